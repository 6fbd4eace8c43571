/**
 * `npm run bench:caching`: the same file, 1,000 records that share a 6,000-token instruction, with prompt
 * caching off and on, one after the other on one local cloud with one quota (the stand-in's minute bucket
 * full at each start). For each run: wall time, the model cost at catalog prices, the quota it used (what
 * Bedrock reserved and finally charged: reads are released at settlement), 429s, and the cache's hit rate and
 * tokens. Written to bench/results/caching.json. Targets: cost <= 25% and time <= 40% of the uncached run,
 * hit rate >= 99%.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QuotaUsage } from '../local/bedrock/quota.ts';
import { type LocalCloud, startLocalCloud } from '../local/cloud/local-cloud.ts';
import { type LocalPipeline, startLocalPipeline } from '../local/pipeline/local-pipeline.ts';
import type { CacheSummary } from '../shared/output/manifest.ts';
import { timedRun } from './timed-run.ts';

const RECORDS = 1_000;
const TOKENS_PER_MINUTE = 3_000_000;
const STAND_IN_SPEED = 0.1;
const TARGETS = { cost: 0.25, time: 0.4, hitRate: 0.99 };
/** About 6,000 tokens at the stand-in's 4 bytes a token. */
const INSTRUCTION = `You sort support tickets into one of twelve queues under this policy. ${'Refunds are due within thirty days of purchase when the item is unused. '.repeat(330)}`;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

function ticketsFile(): string {
  return Array.from({ length: RECORDS }, (_, index) =>
    JSON.stringify({
      id: `ticket-${index}`,
      system: INSTRUCTION,
      prompt: `Ticket ${index}: the nightly export stopped after the upgrade. Which queue?`,
      max_tokens: 64,
    }),
  ).join('\n');
}

interface CachingRun {
  readonly cache: 'off' | 'auto';
  readonly seconds: number;
  readonly estimatedCostUsd: number;
  readonly quota: {
    readonly tokensReserved: number;
    readonly tokensCharged: number;
    readonly throttled: number;
  };
  readonly promptCache: CacheSummary;
  readonly succeeded: number;
}

async function main(): Promise<void> {
  const cloud = await startLocalCloud({
    bedrock: { speed: STAND_IN_SPEED, quota: { tokensPerMinute: TOKENS_PER_MINUTE } },
  });
  const pipeline = await startLocalPipeline(cloud, {
    tokensPerMinute: TOKENS_PER_MINUTE,
    worker: { concurrency: 8 },
  });
  try {
    const uncached = await runFile(cloud, pipeline, 'off');
    const cached = await runFile(cloud, pipeline, 'auto');
    const ratio = (part: number, whole: number) => Math.round((part / whole) * 1000) / 1000;
    const cachedOverUncached = {
      cost: ratio(cached.estimatedCostUsd, uncached.estimatedCostUsd),
      time: ratio(cached.seconds, uncached.seconds),
      quotaCharged: ratio(cached.quota.tokensCharged, uncached.quota.tokensCharged),
    };
    const result = {
      benchmark: 'caching',
      measuredAt: new Date().toISOString(),
      node: process.version,
      setup: {
        records: RECORDS,
        sharedInstructionTokens: Math.ceil(Buffer.byteLength(INSTRUCTION) / 4),
        maxTokens: 64,
        tokensPerMinute: TOKENS_PER_MINUTE,
        standInSpeed: STAND_IN_SPEED,
        workerConcurrency: 8,
      },
      runs: [uncached, cached],
      cachedOverUncached,
      targets: TARGETS,
      meetsTargets:
        cachedOverUncached.cost <= TARGETS.cost &&
        cachedOverUncached.time <= TARGETS.time &&
        (cached.promptCache.hitRate ?? 0) >= TARGETS.hitRate,
    };
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/caching.json', `${JSON.stringify(result, null, 2)}\n`);
    for (const run of result.runs)
      process.stdout.write(
        `cache=${run.cache.padEnd(4)} ${String(run.seconds).padStart(6)} s  $${run.estimatedCostUsd}  quota charged ${run.quota.tokensCharged}  429s ${run.quota.throttled}  hit rate ${run.promptCache.hitRate}\n`,
      );
    process.stdout.write(
      `cached / uncached: ${JSON.stringify(cachedOverUncached)}; targets ${result.meetsTargets ? 'met' : 'NOT met'}\n`,
    );
  } finally {
    await pipeline.stop();
    await cloud.stop();
  }
}

/** Uploads the file with caching `cache`, once the quota is full again, and reads its manifest when done. */
async function runFile(
  cloud: LocalCloud,
  pipeline: LocalPipeline,
  cache: 'off' | 'auto',
): Promise<CachingRun> {
  await quotaRefilled(cloud);
  const before = quotaTotals(cloud.bedrock.state().quotas);
  const file = { key: `inputs/tickets-cache-${cache}.jsonl`, body: ticketsFile(), metadata: { cache } };
  const { seconds, manifest: written } = await timedRun(cloud, pipeline, file);
  const after = quotaTotals(cloud.bedrock.state().quotas);
  return {
    cache,
    seconds,
    estimatedCostUsd: written.estimatedCostUsd,
    quota: {
      tokensReserved: after.tokensReserved - before.tokensReserved,
      tokensCharged: after.tokensCharged - before.tokensCharged,
      throttled: after.throttled - before.throttled,
    },
    promptCache: written.cache,
    succeeded: written.successRecordCount,
  };
}

function quotaTotals(quotas: readonly QuotaUsage[]) {
  const sum = (pick: (quota: QuotaUsage) => number) =>
    quotas.reduce((total, quota) => total + pick(quota), 0);
  return {
    tokensReserved: sum((quota) => quota.tokensReserved),
    tokensCharged: sum((quota) => quota.tokensCharged),
    throttled: sum((quota) => quota.throttled),
  };
}

/** Both runs start from a full minute's quota, so neither inherits the other's debt. */
async function quotaRefilled(cloud: LocalCloud): Promise<void> {
  while (cloud.bedrock.state().quotas.some((quota) => quota.availableTokens < quota.tokensPerMinute))
    await sleep(500);
}

await main();
