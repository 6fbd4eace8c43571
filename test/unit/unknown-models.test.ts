import { afterEach, describe, expect, it } from 'vitest';
import { catalogInUse, defaultCatalog, useCatalog } from '../../shared/catalog/catalog.ts';
import { ALLOW_UNKNOWN_MODELS_SETTING, loadConfig, workerSettings } from '../../shared/config.ts';
import { costOfRequest } from '../../shared/cost/cost.ts';
import { ConfigurationError, ModelSelectionError } from '../../shared/errors.ts';
import { resolveModel, unlistedModelIds } from '../../shared/models/resolve-model.ts';
import { buildInvocation } from '../../shared/request/build-request.ts';
import { routeContext } from '../../shared/request/long-context.ts';
import { textResponse } from '../support/memory-ports.ts';
import { pipelineHarness } from '../support/pipeline-harness.ts';
import { thrown } from '../support/thrown.ts';

const allowing = defaultCatalog.withUnknownModels(true);

afterEach(() => useCatalog(defaultCatalog));

describe('a model id the catalog does not list', () => {
  it.each([
    ['anthropic.claude-opus-5', 'us-west-2', 'global.anthropic.claude-opus-5'],
    ['us.anthropic.claude-opus-5', 'us-east-1', 'us.anthropic.claude-opus-5'],
    ['eu.anthropic.claude-haiku-5-20270101-v1:0', 'eu-west-1', 'eu.anthropic.claude-haiku-5-20270101-v1:0'],
  ])('%s runs in %s as %s, known by its id only, when unknown ids are allowed', (name, region, modelId) => {
    // Act
    const resolved = resolveModel({ model: name, region }, allowing);

    // Assess
    expect(resolved.modelId).toBe(modelId);
    expect(resolved.model).toMatchObject({ prices: {}, longContext: { mode: 'unknown' }, serviceTiers: {} });
    expect(
      costOfRequest({ input_tokens: 1_000, output_tokens: 100 }, resolved.model, 'global'),
    ).toBeUndefined();
    expect(allowing.lists(resolved.model)).toBe(false);
    expect(unlistedModelIds([modelId, 'global.anthropic.claude-opus-4-6-v1'], allowing)).toEqual([modelId]);
  });

  it.each([
    ['gpt-4', 'not of Bedrock form', allowing],
    ['anthropic.Claude Opus', 'not of Bedrock form', allowing],
    ['anthropic.claude-opus-5', 'in a catalog that does not allow unknown ids', defaultCatalog],
  ])('%s (%s) is refused as UNKNOWN_MODEL', (name, _case, catalog) => {
    // Act
    const error = thrown(ModelSelectionError, () =>
      resolveModel({ model: name, region: 'us-west-2' }, catalog),
    );

    // Assess
    expect(error.code).toBe('UNKNOWN_MODEL');
  });

  it('says how to run an id of Bedrock form the catalog does not list', () => {
    const error = thrown(ModelSelectionError, () =>
      resolveModel({ model: 'anthropic.claude-opus-5', region: 'us-west-2' }, defaultCatalog),
    );
    expect(error.message).toMatch(/allowUnknownModels; --unknown-models allow/);
  });

  it('sends a long document as it is: no beta, no refusal here, the window being Bedrock to enforce', () => {
    // Prepare
    const { model } = resolveModel({ model: 'anthropic.claude-opus-5', region: 'us-west-2' }, allowing);

    // Act
    const route = routeContext(model, { lower: 900_000, upper: 1_500_000 }, 64_000, allowing);
    const invocation = buildInvocation(
      {
        body: { max_tokens: 200_000, messages: [{ role: 'user', content: 'hi' }] },
        modelOverride: undefined,
      },
      { model: 'anthropic.claude-opus-5', region: 'us-west-2', defaultMaxTokens: 256 },
      allowing,
    );

    // Assess
    expect(route).toEqual({ beta: undefined, longContext: true });
    expect(invocation.body).not.toHaveProperty('anthropic_beta');
    expect(invocation.maxTokens).toBe(200_000);
  });

  it(`allows unknown ids in a function whose ${ALLOW_UNKNOWN_MODELS_SETTING} is true, and only then`, () => {
    // Prepare
    const env = {
      BEDROCK_REGION: 'us-west-2',
      BUCKET_NAME: 'b',
      LEDGER_TABLE_NAME: 'l',
      RECORD_QUEUE_URL: 'q',
      FINALIZE_QUEUE_URL: 'f',
    };

    // Act
    loadConfig(workerSettings, {
      ...env,
      BEDROCK_MODEL: 'anthropic.claude-opus-5',
      ALLOW_UNKNOWN_MODELS: 'true',
    });
    const allowed = catalogInUse().allowsUnknownModels;
    loadConfig(workerSettings, { ...env, ALLOW_UNKNOWN_MODELS: 'false' });
    const refused = catalogInUse().allowsUnknownModels;
    const misspelt = thrown(ConfigurationError, () =>
      loadConfig(workerSettings, { ...env, ALLOW_UNKNOWN_MODELS: 'yes' }),
    );

    // Assess
    expect([allowed, refused]).toEqual([true, false]);
    expect(misspelt.message).toMatch(/ALLOW_UNKNOWN_MODELS must be true or false/);
  });

  it('runs through the pipeline, and the manifest names it with its records, its cost unknown', async () => {
    // Prepare
    useCatalog(allowing);
    const pipeline = pipelineHarness({ answer: () => textResponse('fine') });
    const body = '{"prompt": "hi", "model": "us.anthropic.claude-opus-5"}\n{"prompt": "hi"}';

    // Act
    await pipeline.run('inputs/new-model.jsonl', body, { endpoint: 'regional' });

    // Assess
    expect(pipeline.model.calls.map((call) => call.modelId).sort()).toEqual([
      'us.anthropic.claude-opus-4-6-v1',
      'us.anthropic.claude-opus-5',
    ]);
    expect(pipeline.manifest('inputs/new-model.jsonl')).toMatchObject({
      successRecordCount: 2,
      unpriced: { records: 1 },
      unknownModels: [{ modelId: 'us.anthropic.claude-opus-5', records: 1 }],
    });
  });
});
