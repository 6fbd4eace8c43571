/**
 * `npm run bench` (second part): the pipeline against the scripts people write instead, on the Bedrock
 * stand-in with a realistic latency and a token quota, in one run:
 *   - a sequential script (one InvokeModel at a time),
 *   - a concurrent script (16 at once, relying on the SDK's own retries),
 *   - the pipeline (shared token budget, queue-driven retries).
 * Two scenarios: plenty of quota (speed matters), then a tight quota (throttling matters).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { startBedrockStandIn } from '../local/bedrock/stand-in.ts';
import { LOCAL_CREDENTIALS } from '../local/cloud/local-cloud.ts';
import { runLocalJob } from '../local/run-job.ts';
import { mapWithLimit } from '../shared/pipeline/concurrency.ts';

const SPEED = 0.2;
const MAX_TOKENS = 100;
const scenarios = [
  { records: 150, tokensPerMinute: 150_000 },
  { records: 40, tokensPerMinute: 12_000 },
];
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

interface Scenario {
  readonly prompts: readonly string[];
  readonly tokensPerMinute: number;
}

interface Outcome {
  readonly seconds: number;
  readonly throttles: number;
  readonly lost: number;
}

async function script(scenario: Scenario, concurrency: number): Promise<Outcome> {
  const standIn = await startBedrockStandIn({
    speed: SPEED,
    quota: { tokensPerMinute: scenario.tokensPerMinute },
  });
  const client = new BedrockRuntimeClient({
    region: standIn.region,
    endpoint: standIn.endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const started = performance.now();
  let lost = 0;
  await mapWithLimit(scenario.prompts, concurrency, async (prompt) => {
    const body = JSON.stringify({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: MAX_TOKENS,
      messages: [{ role: 'user', content: prompt }],
    });
    try {
      await client.send(
        new InvokeModelCommand({
          modelId: 'global.anthropic.claude-opus-4-6-v1',
          body,
          contentType: 'application/json',
        }),
      );
    } catch {
      lost += 1;
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const throttles = standIn.state().responses.ThrottlingException ?? 0;
  client.destroy();
  await standIn.close();
  return { seconds, throttles, lost };
}

async function pipeline(scenario: Scenario): Promise<Outcome> {
  const work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-bench-'));
  const file = path.join(work, 'bench.jsonl');
  await writeFile(
    file,
    scenario.prompts
      .map((prompt, index) => JSON.stringify({ id: `t${index}`, prompt, max_tokens: MAX_TOKENS }))
      .join('\n'),
  );
  let throttles = 0;
  const started = performance.now();
  const result = await runLocalJob({
    file,
    outDir: work,
    speed: SPEED,
    tokensPerMinute: scenario.tokensPerMinute,
    log: () => {},
    onProgress: (progress) => {
      throttles = progress.bedrockThrottles;
    },
  });
  const seconds = (performance.now() - started) / 1000;
  await rm(work, { recursive: true, force: true });
  return { seconds, throttles, lost: Number(result.manifest.errorRecordCount) };
}

const line = (name: string, outcome: Outcome) =>
  process.stdout.write(
    `  ${name.padEnd(24)} ${outcome.seconds.toFixed(1).padStart(6)} s, ${outcome.throttles} Bedrock throttles, ${outcome.lost} records lost\n`,
  );

for (const { records, tokensPerMinute } of scenarios) {
  const scenario: Scenario = {
    prompts: Array.from(
      { length: records },
      (_, index) => `Summarise support ticket ${index} in one paragraph for the weekly report.`,
    ),
    tokensPerMinute,
  };
  process.stdout.write(
    `\n${records} records, quota ${tokensPerMinute.toLocaleString('en-US')} tokens/min, stand-in speed ${SPEED}, max_tokens ${MAX_TOKENS}\n`,
  );
  const sequential = await script(scenario, 1);
  line('sequential script', sequential);
  const concurrent = await script(scenario, 16);
  line('concurrent script (16)', concurrent);
  const ours = await pipeline(scenario);
  line('pipeline', ours);
  process.stdout.write(
    `  pipeline vs sequential script: ${(sequential.seconds / ours.seconds).toFixed(1)}x faster (local cloud start included)\n`,
  );
}
