/**
 * `npm run bench:quota`: how well each client spends a Bedrock token quota. The same file through three
 * clients at the same time, each against its own Bedrock stand-in with the same quota and latency:
 *   - the pipeline (shared budget, queue-driven) on the local cloud,
 *   - a naive script: 16 calls at once, the AWS SDK's standard retries,
 *   - a careful script: 4 calls at once, the SDK's adaptive retry mode, 10 attempts.
 * Two latencies, run side by side: the stand-in's realistic one (speed 1), and answers four times as fast,
 * where four calls at once are enough to keep the quota busy. For each client: wall time, quota use (the
 * theoretical minimum time over the time taken), throttled calls, records lost, tokens reserved against
 * tokens charged, and per record the Bedrock calls, SQS receives, S3 requests and DynamoDB writes. Written
 * to bench/results/quota.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { QuotaUsage } from '../local/bedrock/quota.ts';
import { startBedrockStandIn } from '../local/bedrock/stand-in.ts';
import { LOCAL_CREDENTIALS, startLocalCloud } from '../local/cloud/local-cloud.ts';
import { RequestMeter } from '../local/cloud/request-meter.ts';
import { startLocalPipeline } from '../local/pipeline/local-pipeline.ts';
import { workerConcurrencyFor } from '../shared/budget/throughput.ts';
import { OUTPUT_TOKEN_BURNDOWN } from '../shared/config.ts';
import { resolveModel } from '../shared/models/resolve-model.ts';
import { mapWithLimit } from '../shared/pipeline/concurrency.ts';
import { WORKER_BATCH } from '../shared/pipeline/worker.ts';

const RECORDS = 1_200;
const TOKENS_PER_MINUTE = 100_000;
const MAX_TOKENS = 256;
/** The stand-in's latency factors: 1 is its realistic latency (about 2 s for these answers); 0.25 is fast. */
const SCENARIOS = [
  { name: 'realistic latency', speed: 1 },
  { name: 'fast answers', speed: 0.25 },
] as const;
const REGION = 'us-west-2';
const MODEL = 'haiku-4.5';
const MODEL_ID = resolveModel({ model: MODEL, region: REGION, endpoint: 'global' }).modelId;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

/** About 100 input tokens each: a short ticket to summarise. */
const prompts = Array.from(
  { length: RECORDS },
  (_, index) =>
    `Summarise support ticket ${index} for the weekly report. The customer writes that the nightly export ` +
    `stopped after the upgrade, that retries did not help, and that the dashboard shows no errors. They ask ` +
    `for a workaround and for the root cause, and mention a deadline on Friday for their own report.`,
);

interface ClientResult {
  readonly seconds: number;
  readonly recordsLost: number;
  /** Records that waited for their tokens (the pipeline's budget waits). */
  readonly recordsWaited?: number;
  readonly quota: QuotaUsage;
  readonly perRecord: Readonly<Record<string, number>>;
  readonly budget?: { readonly reservedTokens: number; readonly chargedTokens: number };
}

const standIn = (speed: number) =>
  startBedrockStandIn({ region: REGION, speed, quota: { tokensPerMinute: TOKENS_PER_MINUTE } });

/** How long the stand-in takes to answer these prompts at `speed`, about: first token, then 76 tokens. */
const latencySeconds = (speed: number) => ((500 + 76 * 20) * speed) / 1000;

function quotaOf(usages: readonly QuotaUsage[]): QuotaUsage {
  const usage = usages.find((candidate) => candidate.modelId === MODEL_ID);
  if (usage === undefined) throw new Error(`no calls to ${MODEL_ID}`);
  return usage;
}

async function script(
  speed: number,
  concurrency: number,
  retries: { retryMode?: string; maxAttempts?: number },
) {
  const bedrock = await standIn(speed);
  const client = new BedrockRuntimeClient({
    region: REGION,
    endpoint: bedrock.endpoint,
    credentials: LOCAL_CREDENTIALS,
    ...retries,
  });
  let lost = 0;
  const started = performance.now();
  await mapWithLimit(prompts, concurrency, async (prompt) => {
    const body = JSON.stringify({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: MAX_TOKENS,
      messages: [{ role: 'user', content: prompt }],
    });
    try {
      await client.send(new InvokeModelCommand({ modelId: MODEL_ID, body, contentType: 'application/json' }));
    } catch {
      lost += 1;
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const quota = quotaOf(bedrock.state().quotas);
  client.destroy();
  await bedrock.close();
  return {
    seconds,
    recordsLost: lost,
    quota,
    perRecord: { bedrockCalls: (quota.requests + quota.throttled) / RECORDS },
  } satisfies ClientResult;
}

async function pipeline(speed: number): Promise<ClientResult> {
  const cloud = await startLocalCloud({
    region: REGION,
    bedrock: { speed, quota: { tokensPerMinute: TOKENS_PER_MINUTE } },
  });
  // Before the pipeline starts, so that its first receives are metered too.
  const meter = new RequestMeter();
  meter.attach(cloud.clients);
  const workerConcurrency = workerConcurrencyFor(
    {
      tokensPerMinute: TOKENS_PER_MINUTE,
      outputBurndown: OUTPUT_TOKEN_BURNDOWN,
      record: { inputTokens: 100, outputTokens: 80, latencySeconds: latencySeconds(speed) },
    },
    WORKER_BATCH.size,
  );
  const local = await startLocalPipeline(cloud, {
    tokensPerMinute: TOKENS_PER_MINUTE,
    workerConcurrency,
    workerTimeoutMs: 300_000,
    visibilityTimeoutSeconds: 1_800,
    defaults: { model: MODEL, defaultMaxTokens: MAX_TOKENS },
  });
  const body = prompts.map((prompt, index) => JSON.stringify({ id: `t${index}`, prompt })).join('\n');
  const started = performance.now();
  await cloud.clients.s3.send(
    new PutObjectCommand({ Bucket: local.resources.bucket, Key: 'inputs/quota.jsonl', Body: body }),
  );
  const completion = await local.completion('inputs/quota.jsonl', 3_600_000);
  const seconds = (performance.now() - started) / 1000;
  const { counts, jobId } = completion.detail as { counts: { succeeded: number }; jobId: string };
  const job = await local.ledger.getJob(jobId);
  const quota = quotaOf(cloud.bedrock.state().quotas);
  const writes = Object.fromEntries(
    [...meter.dynamodbWrites].map(([kind, count]) => [`dynamodbWrites.${kind}`, count / RECORDS]),
  );
  const result: ClientResult = {
    seconds,
    recordsLost: RECORDS - counts.succeeded,
    recordsWaited: job?.retries.budgetWaits ?? 0,
    quota,
    budget: { reservedTokens: local.budget.reservedTokens, chargedTokens: local.budget.chargedTokens },
    perRecord: {
      bedrockCalls: (quota.requests + quota.throttled) / RECORDS,
      sqsReceives: sumOf([...meter.receivesByRecord.values()]) / RECORDS,
      s3Requests: meter.count('s3') / RECORDS,
      ...writes,
    },
  };
  await local.stop();
  await cloud.stop();
  return result;
}

function sumOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0);
}

/** What the figures mean for one client: the quota's own minimum time is that of the tokens it was charged. */
function report(result: ClientResult) {
  const { quota } = result;
  const calls = quota.requests + quota.throttled;
  const minimumSeconds = (Math.max(0, quota.tokensCharged - TOKENS_PER_MINUTE) / TOKENS_PER_MINUTE) * 60;
  return {
    seconds: round(result.seconds, 1),
    minimumSeconds: round(minimumSeconds, 1),
    quotaUse: round(minimumSeconds / result.seconds, 4),
    calls,
    throttledCalls: quota.throttled,
    throttledShare: round(quota.throttled / calls, 4),
    recordsLost: result.recordsLost,
    ...(result.recordsWaited === undefined ? {} : { recordsWaited: result.recordsWaited }),
    bedrockTokensReserved: quota.tokensReserved,
    tokensCharged: quota.tokensCharged,
    initialMinuteShare: round(TOKENS_PER_MINUTE / quota.tokensCharged, 3),
    ...(result.budget === undefined
      ? {}
      : {
          budgetTokensReserved: result.budget.reservedTokens,
          budgetTokensSettled: result.budget.chargedTokens,
          budgetReservedOverCharged: round(result.budget.reservedTokens / result.budget.chargedTokens, 3),
        }),
    perRecord: Object.fromEntries(
      Object.entries(result.perRecord).map(([name, value]) => [name, round(value, 3)]),
    ),
  };
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

process.stdout.write(
  `${RECORDS} records of ${MODEL} (max_tokens ${MAX_TOKENS}), quota ${TOKENS_PER_MINUTE.toLocaleString('en-US')} tokens/min; ${SCENARIOS.length} latencies x three clients at once...\n`,
);
const scenarios = await Promise.all(
  SCENARIOS.map(async ({ name, speed }) => {
    const [ours, naive, careful] = await Promise.all([
      pipeline(speed),
      script(speed, 16, {}),
      script(speed, 4, { retryMode: 'adaptive', maxAttempts: 10 }),
    ]);
    const clients = { pipeline: report(ours), naiveScript: report(naive), carefulScript: report(careful) };
    const targets = {
      quotaUseAtLeast97Percent: clients.pipeline.quotaUse >= 0.97,
      quotaUseAtLeastCarefulScripts: clients.pipeline.quotaUse >= clients.carefulScript.quotaUse,
      throttledAtMost1Percent: clients.pipeline.throttledShare <= 0.01,
      noRecordLost: clients.pipeline.recordsLost === 0,
      receivesPerRecordAtMost1_1: (clients.pipeline.perRecord.sqsReceives ?? Number.POSITIVE_INFINITY) <= 1.1,
      budgetWritesPer10RecordsAtMost2: (clients.pipeline.perRecord['dynamodbWrites.budget'] ?? 0) * 10 <= 2,
      initialMinuteUnder20PercentOfCharged: clients.pipeline.initialMinuteShare < 0.2,
    };
    return { name, standInSpeed: speed, latencySeconds: latencySeconds(speed), clients, targets };
  }),
);

for (const { name, latencySeconds: latency, clients, targets } of scenarios) {
  process.stdout.write(`${name} (answers in about ${latency.toFixed(1)} s):\n`);
  for (const [client, figures] of Object.entries(clients)) {
    process.stdout.write(
      `  ${client.padEnd(14)} ${String(figures.seconds).padStart(6)} s (minimum ${figures.minimumSeconds} s, quota use ${(figures.quotaUse * 100).toFixed(1)}%), ` +
        `${figures.throttledCalls} of ${figures.calls} calls throttled (${(figures.throttledShare * 100).toFixed(1)}%), ${figures.recordsLost} records lost\n`,
    );
  }
  process.stdout.write(`  pipeline per record: ${JSON.stringify(clients.pipeline.perRecord)}\n`);
  process.stdout.write(`  targets: ${JSON.stringify(targets)}\n`);
}

await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/quota.json', import.meta.url),
  `${JSON.stringify(
    {
      benchmark: 'quota',
      file: { records: RECORDS, model: MODEL_ID, maxTokens: MAX_TOKENS },
      tokensPerMinute: TOKENS_PER_MINUTE,
      scenarios,
    },
    null,
    2,
  )}\n`,
);
