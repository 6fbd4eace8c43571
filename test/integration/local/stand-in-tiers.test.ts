import { InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BedrockInvoker } from '../../../functions/adapters/bedrock-invoker.ts';
import { type BedrockStandIn, startBedrockStandIn } from '../../../local/bedrock/stand-in.ts';
import { classifyFailure } from '../../../shared/failures.ts';
import { bedrockClient, failureOf, invokeBody } from '../../support/bedrock-clients.ts';
import { catalogWith } from '../../support/factories.ts';

const HAIKU = 'global.anthropic.claude-haiku-4-5-20251001-v1:0';
const OPUS = 'global.anthropic.claude-opus-4-6-v1';

/** The built-in catalog with Haiku 4.5 taking flex and priority (Opus 4.6 takes neither). */
const tieredCatalog = catalogWith((data) => {
  const haiku = data.models.find((model) => model.key === 'haiku-4.5');
  Object.assign(haiku ?? {}, { serviceTiers: { flex: {}, priority: {} } });
});

describe('the stand-in serves the service tiers its catalog gives each model', () => {
  let standIn: BedrockStandIn;
  beforeAll(async () => {
    standIn = await startBedrockStandIn({
      catalog: tieredCatalog,
      latency: { firstTokenMs: 0, perOutputTokenMs: 1 },
    });
  });
  afterAll(() => standIn.close());

  /** One call through the SDK, with the answer's service tier and invocation latency headers. */
  async function call(modelId: string, serviceTier?: 'flex' | 'priority' | 'default') {
    const client = bedrockClient(standIn);
    let headers: Record<string, string> = {};
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        headers = (result.response as { headers: Record<string, string> }).headers;
        return result;
      },
      { step: 'deserialize' },
    );
    const output = await client.send(
      new InvokeModelCommand({
        modelId,
        body: JSON.stringify(invokeBody({ max_tokens: 400 })),
        ...(serviceTier === undefined ? {} : { serviceTier }),
      }),
    );
    return {
      servedTier: output.serviceTier,
      latencyMs: Number(headers['x-amzn-bedrock-invocation-latency']),
    };
  }

  it('answers each tier the model takes in its own time, naming the tier that served it', async () => {
    // Act
    const standard = await call(HAIKU);
    const flex = await call(HAIKU, 'flex');
    const priority = await call(HAIKU, 'priority');

    // Assess
    expect([standard.servedTier, flex.servedTier, priority.servedTier]).toEqual([
      'default',
      'flex',
      'priority',
    ]);
    const { serviceTierOutputSpeed: speed } = tieredCatalog;
    expect(flex.latencyMs).toBe(Math.round(standard.latencyMs / speed.flex));
    expect(priority.latencyMs).toBe(Math.round(standard.latencyMs / speed.priority));
    expect(standIn.state().servedTiers).toMatchObject({ default: 1, flex: 1, priority: 1 });
  });

  it("refuses a tier the model does not take with Bedrock's words, which the pipeline reads as a tier refusal", async () => {
    // Act
    const failure = await failureOf(call(OPUS, 'flex'));
    const error = await new BedrockInvoker(() => bedrockClient(standIn))
      .invoke(
        { region: standIn.region, modelId: OPUS, serviceTier: 'priority' },
        JSON.stringify(invokeBody()),
        AbortSignal.timeout(10_000),
      )
      .catch((caught: unknown) => caught);

    // Assess
    expect(failure).toEqual({
      name: 'ValidationException',
      status: 400,
      message: 'The provided service tier is not supported for this model.',
    });
    expect(classifyFailure(error)).toMatchObject({ tierRefused: true, answered: true });
  });

  it('gives the adapter the tier that served the call', async () => {
    // Act
    const answer = await new BedrockInvoker(() => bedrockClient(standIn)).invoke(
      { region: standIn.region, modelId: HAIKU, serviceTier: 'flex' },
      JSON.stringify(invokeBody()),
      AbortSignal.timeout(10_000),
    );

    // Assess
    expect(answer.servedTier).toBe('flex');
    expect(answer.response.type).toBe('message');
  });
});
