/**
 * `npm run bench:pools`: one file spread over four quota pools (two source regions x the global and the US
 * profile, unequal quotas), against the strong script of the quota benchmark on the home region's global
 * pool alone, side by side, each in a process of its own against its own Bedrock stand-in. The pipeline
 * reads each pool's quota from the stand-in's Service Quotas as `run --bedrock aws` reads Bedrock's, and runs
 * with the stack's worker for those pools. Target: its whole job (upload to output) at most 55% of the
 * script's (first call to last answer), 0 throttles, 0 lost. Written to bench/results/pools.json.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { pipelineSettings } from '../infra/props.ts';
import { type LocalCloud, startLocalCloud } from '../local/cloud/local-cloud.ts';
import { startLocalPipeline } from '../local/pipeline/local-pipeline.ts';
import { readStandInQuotas } from '../local/run-job.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../shared/config.ts';
import { resolveModel } from '../shared/models/resolve-model.ts';
import { poolName, poolsOfSettings } from '../shared/quotas/pools.ts';
import type { QuotaReading } from '../shared/quotas/service-quotas.ts';
import { type ClientFigures, inputFile, MAX_TOKENS, MODEL, REGION, type Scenario } from './quota-setup.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

const OTHER_REGION = 'us-east-1';
const ENDPOINTS = ['global', 'regional'] as const;
const RECORDS = 1_200;
const HAIKU = resolveModel({ model: MODEL, region: REGION }).model.bedrockId;
/** Each pool's tokens a minute; the strong script has the first alone. */
const POOL_QUOTAS: Readonly<Record<string, number>> = {
  [`${REGION}#global.${HAIKU}`]: 100_000,
  [`${REGION}#us.${HAIKU}`]: 60_000,
  [`${OTHER_REGION}#global.${HAIKU}`]: 80_000,
  [`${OTHER_REGION}#us.${HAIKU}`]: 40_000,
};
const HOME_POOL: Scenario = {
  name: 'home pool',
  tokensPerMinute: 100_000,
  records: RECORDS,
  latencyFactor: 1,
};
const TARGET_SHARE_OF_SCRIPT = 0.55;

interface PoolsFigures {
  readonly wholeJobSeconds: number;
  readonly calls: number;
  readonly throttledCalls: number;
  readonly recordsLost: number;
  readonly pools: ReadonlyArray<{ pool: string; quota: number; records: number; throttled: number }>;
}

/** The stand-in serving both regions, with each pool's quota, behind the local cloud. */
function cloudWithPools() {
  return startLocalCloud({
    region: REGION,
    warmDynamoDb: true,
    bedrock: {
      speed: 1,
      regions: [OTHER_REGION],
      quota: { tokensPerMinute: 1_000 },
      quotaByModel: Object.fromEntries(
        Object.entries(POOL_QUOTAS).map(([pool, tokensPerMinute]) => [pool, { tokensPerMinute }]),
      ),
    },
  });
}

const PROPS = {
  bedrockRegion: REGION,
  additionalBedrockRegions: [OTHER_REGION],
  additionalEndpoints: ['regional' as const],
  defaultModel: MODEL,
  defaultMaxTokens: MAX_TOKENS,
};

/** Each pool's quota as Service Quotas (the stand-in's) says, as `run --bedrock aws` reads Bedrock's. */
function readQuotas(cloud: LocalCloud): Promise<QuotaReading> {
  const job = {
    model: MODEL,
    region: REGION,
    endpoint: 'global' as const,
    endpoints: [...ENDPOINTS],
    regions: [REGION, OTHER_REGION],
  };
  return readStandInQuotas(cloud, poolsOfSettings(job), { fallback: DEFAULT_TOKENS_PER_MINUTE, share: 1 });
}

/** The pipeline over the four pools, on the local cloud, with the stack's worker for them. */
async function pipelineOverPools(): Promise<PoolsFigures> {
  const cloud = await cloudWithPools();
  const reading = await readQuotas(cloud);
  const settings = pipelineSettings(PROPS);
  const quotas = reading.quotas.map((quota) => quota.usableTokensPerMinute);
  // The stack sizes its workers for one quota per pool; these differ, so for their mean.
  const mean = Math.round(quotas.reduce((sum, quota) => sum + quota, 0) / quotas.length);
  const { visibilityTimeoutSeconds: _derivedFromTheTimeout, ...worker } = pipelineSettings({
    ...PROPS,
    tokensPerMinute: mean,
  }).worker;
  const local = await startLocalPipeline(cloud, {
    quotas: reading,
    worker,
    defaults: {
      model: MODEL,
      defaultMaxTokens: MAX_TOKENS,
      endpoints: settings.endpoints,
      regions: settings.bedrockRegions,
    },
  });
  const key = 'inputs/pools.jsonl';
  const uploadedAt = Date.now();
  await cloud.clients.s3.send(
    new PutObjectCommand({ Bucket: local.resources.bucket, Key: key, Body: inputFile(RECORDS) }),
  );
  const completion = await local.completion(key, 3_600_000);
  const wholeJobSeconds = (Date.now() - uploadedAt) / 1000;
  const { counts } = completion.detail as { counts: { succeeded: number } };
  const usage = cloud.bedrock.state().quotas;
  await local.stop();
  await cloud.stop();
  return {
    wholeJobSeconds,
    calls: usage.reduce((sum, quota) => sum + quota.requests + quota.throttled, 0),
    throttledCalls: usage.reduce((sum, quota) => sum + quota.throttled, 0),
    recordsLost: RECORDS - counts.succeeded,
    pools: usage.map((quota) => ({
      pool: poolName(quota),
      quota: quota.tokensPerMinute,
      records: quota.requests,
      throttled: quota.throttled,
    })),
  };
}

const execFileAsync = promisify(execFile);

/** The strong script of the quota benchmark, on the home pool alone, in its own process. */
async function strongScript(): Promise<ClientFigures> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', 'bench/quota-clients.ts', 'strong', JSON.stringify(HOME_POOL)],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ClientFigures;
}

async function pipelineProcess(): Promise<PoolsFigures> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', 'bench/pools.ts', '--pipeline'],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PoolsFigures;
}

if (process.argv.includes('--pipeline')) {
  process.stdout.write(`${JSON.stringify(await pipelineOverPools())}\n`);
  process.exit(0);
}

process.stdout.write(
  `${RECORDS} Haiku 4.5 records over ${Object.keys(POOL_QUOTAS).length} pools (${Object.entries(POOL_QUOTAS)
    .map(([pool, quota]) => `${pool} ${quota.toLocaleString('en-US')}`)
    .join(', ')}) against the strong script on the first alone, side by side...\n`,
);
const [pipeline, script] = await Promise.all([pipelineProcess(), strongScript()]);
const share = pipeline.wholeJobSeconds / script.wholeJobSeconds;
const met = {
  atMostShareOfScript: share <= TARGET_SHARE_OF_SCRIPT,
  noThrottles: pipeline.throttledCalls === 0,
  noRecordLost: pipeline.recordsLost === 0,
};
const result = {
  benchmark: 'pools',
  measuredAt: new Date().toISOString(),
  node: process.version,
  records: RECORDS,
  poolQuotas: POOL_QUOTAS,
  pipeline,
  strongScriptOnHomePool: script,
  pipelineShareOfScript: Math.round(share * 1000) / 1000,
  targets: { atMostShareOfScript: TARGET_SHARE_OF_SCRIPT, throttledCalls: 0, recordsLost: 0 },
  met,
};
for (const pool of pipeline.pools)
  process.stdout.write(
    `  ${pool.pool}: ${pool.records} records, quota ${pool.quota.toLocaleString('en-US')}, ${pool.throttled} throttled\n`,
  );
process.stdout.write(
  `pipeline over the pools: ${pipeline.wholeJobSeconds.toFixed(1)} s upload to output, ${pipeline.throttledCalls} of ${pipeline.calls} calls throttled, ${pipeline.recordsLost} lost\n` +
    `strong script on ${REGION}#global alone: ${script.wholeJobSeconds.toFixed(1)} s first call to last answer\n` +
    `the pipeline took ${(share * 100).toFixed(1)}% of the script's time (target at most ${Math.round(TARGET_SHARE_OF_SCRIPT * 100)}%)\n`,
);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/pools.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
