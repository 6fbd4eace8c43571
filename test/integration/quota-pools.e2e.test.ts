import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceQuotasSource } from '../../functions/adapters/service-quotas.ts';
import { LOCAL_CREDENTIALS, type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline/local-pipeline.ts';
import { poolsOfSettings } from '../../shared/quotas/pools.ts';
import { readPoolQuotas } from '../../shared/quotas/service-quotas.ts';
import { bedrockClient, invoke, invokeBody } from '../support/bedrock-clients.ts';
import { s3KeyOf } from '../support/factories.ts';

const HAIKU = 'anthropic.claude-haiku-4-5-20251001-v1:0';
const WEST = 'us-west-2';
const EAST = 'us-east-1';
/** Two more source regions, for the file that runs while another application spends one of its pools. */
const OHIO = 'us-east-2';
const CALIFORNIA = 'us-west-1';
/** Two European regions, for the file whose home region's daily quota runs out. */
const IRELAND = 'eu-west-1';
const FRANKFURT = 'eu-central-1';
/**
 * Four pools, one with no quota: the first file over them needs a sixth more than the minute's worth its
 * three pools start with, so it spreads by their rates, not only their buckets.
 */
const POOL_QUOTAS: Record<string, number> = {
  [`${WEST}#global.${HAIKU}`]: 6_000,
  [`${EAST}#global.${HAIKU}`]: 0,
  [`${WEST}#us.${HAIKU}`]: 3_000,
  [`${EAST}#us.${HAIKU}`]: 3_000,
  [`${OHIO}#us.${HAIKU}`]: 3_000,
  [`${CALIFORNIA}#us.${HAIKU}`]: 3_000,
};
/** Haiku's daily quota in Ireland: 500 tokens, 1,000 through a cross-region profile, about ten records. */
const IRELAND_DAY = 500;
const DEFAULTS = {
  model: 'haiku-4.5',
  region: WEST,
  endpoint: 'global' as const,
  endpoints: ['global' as const, 'regional' as const],
  regions: [WEST, EAST, OHIO, CALIFORNIA, IRELAND, FRANKFURT],
  defaultMaxTokens: 16,
};

interface ManifestPool {
  readonly region: string;
  readonly modelId: string;
  readonly endpoint?: string;
  readonly records: number;
  readonly quota?: { readonly tokensPerMinute: number; readonly origin: string };
}

let cloud: LocalCloud;
let pipeline: LocalPipeline;

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  cloud = await startLocalCloud({
    region: WEST,
    bedrock: {
      speed: 0.1,
      regions: [EAST, OHIO, CALIFORNIA, IRELAND, FRANKFURT],
      quota: { tokensPerMinute: 1_000_000 },
      quotaByModel: {
        ...Object.fromEntries(
          Object.entries(POOL_QUOTAS).map(([pool, tokensPerMinute]) => [pool, { tokensPerMinute }]),
        ),
        [`${IRELAND}#${HAIKU}`]: { tokensPerMinute: 1_000_000, tokensPerDay: IRELAND_DAY },
      },
    },
  });
  // Each pool's quota as the deployed worker reads it: from (the stand-in's) Service Quotas.
  const source = new ServiceQuotasSource({
    endpoint: cloud.endpoints.bedrock,
    credentials: LOCAL_CREDENTIALS,
  });
  const quotas = await readPoolQuotas(poolsOfSettings(DEFAULTS), source, { fallback: 1_000_000, share: 1 });
  source.destroy();
  pipeline = await startLocalPipeline(cloud, {
    prefix: 'pools',
    quotas,
    worker: { concurrency: 4, timeoutSeconds: 30 },
    defaults: DEFAULTS,
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  await cloud?.stop();
});

describe('a file over several quota pools', () => {
  it('uses each pool in proportion to its quota, leaves out the one with none and says why, throttled never', async () => {
    // Prepare
    const ids = Array.from({ length: 150 }, (_, index) => `p-${String(index).padStart(3, '0')}`);

    // Act
    const { manifest, lines } = await runFile('inputs/spread.jsonl', ids, { regions: `${WEST}+${EAST}` });

    // Assess
    expect(lines.map((line) => [line.id, line.status])).toEqual(ids.map((id) => [id, 'succeeded']));
    const pools = manifest.pools as ManifestPool[];
    const used = Object.fromEntries(pools.map((pool) => [`${pool.region}#${pool.modelId}`, pool.records]));
    const quotaOf = (name: string) => POOL_QUOTAS[name] ?? 0;
    for (const [name, records] of Object.entries(used)) {
      const expected = (ids.length * quotaOf(name)) / 12_000; // the three pools' quotas together
      expect(records, name).toBeGreaterThan(expected * 0.6);
      expect(records, name).toBeLessThan(expected * 1.4);
    }
    expect(Object.keys(used)).toHaveLength(3);
    // The job's live counts, which `status` shows while it runs, end as the manifest's.
    expect((await pipeline.ledger.getJob(String(manifest.jobId)))?.poolRecords).toEqual(used);
    expect(pools.every((pool) => pool.quota?.origin === 'service-quotas')).toBe(true);
    expect(manifest.poolsLeftOut).toEqual([
      expect.objectContaining({
        region: EAST,
        endpoint: 'global',
        reason: expect.stringContaining('is 0 in us-east-1'),
      }),
    ]);
    const standIn = cloud.bedrock.state().quotas;
    expect(standIn.reduce((sum, pool) => sum + pool.throttled, 0)).toBe(0);
  }, 180_000);

  it('keeps a regional file off global profiles, and moves it off a pool another application spends', async () => {
    // Prepare: another application calls us-east-2's geographic profile, the file's home pool, as fast as it
    // lets it.
    const ids = Array.from({ length: 24 }, (_, index) => `r-${String(index).padStart(3, '0')}`);
    const other = otherApplication(OHIO, `us.${HAIKU}`);
    await other.spending;

    // Act
    const { manifest, lines } = await runFile('inputs/regional.jsonl', ids, {
      endpoint: 'regional',
      regions: `${OHIO}+${CALIFORNIA}`,
    });
    await other.stop();

    // Assess
    expect(lines.map((line) => [line.id, line.status])).toEqual(ids.map((id) => [id, 'succeeded']));
    const pools = manifest.pools as ManifestPool[];
    expect(pools.every((pool) => pool.modelId.startsWith('us.'))).toBe(true);
    // Alone, us-east-2 would take every record (the home pool, holding them all at once); spent by the
    // other application, it throttled the pipeline's calls, which went to us-west-1 instead.
    const home = pools.find((pool) => pool.region === OHIO)?.records ?? 0;
    expect(home).toBeLessThan(ids.length / 4);
    expect(manifest.stats).toMatchObject({ attempts: { retriedRecords: expect.any(Number) } });
    const job = await pipeline.ledger.getJob(String(manifest.jobId));
    expect(job?.retries.bedrockThrottles).toBeGreaterThan(0);
  }, 180_000);
});

describe("a file whose home pool's daily quota runs out", () => {
  it("moves to its other pools before Bedrock answers 'Too many tokens per day'", async () => {
    // Prepare
    const ids = Array.from({ length: 30 }, (_, index) => `d-${String(index).padStart(3, '0')}`);

    // Act
    const { manifest, lines } = await runFile('inputs/daily.jsonl', ids, {
      regions: `${IRELAND}+${FRANKFURT}`,
    });

    // Assess
    expect(lines.map((line) => [line.id, line.status])).toEqual(ids.map((id) => [id, 'succeeded']));
    const pools = manifest.pools as ManifestPool[];
    const home = pools.find((pool) => pool.region === IRELAND);
    expect(home?.quota).toMatchObject({ tokensPerDay: IRELAND_DAY * 2 });
    expect(home?.records ?? 0).toBeLessThan(ids.length / 2);
    const refusedForTheDay = cloud.bedrock
      .state()
      .quotas.reduce((sum, pool) => sum + pool.throttledBy.tokensPerDay, 0);
    expect(refusedForTheDay).toBe(0);
  }, 180_000);
});

/** Uploads a file of `ids` and waits for its output and manifest. */
async function runFile(key: string, ids: readonly string[], metadata: Record<string, string> = {}) {
  const body = ids.map((id) => JSON.stringify({ id, prompt: `Summarise record ${id} for the report.` }));
  await cloud.clients.s3.send(
    new PutObjectCommand({
      Bucket: pipeline.resources.bucket,
      Key: key,
      Body: body.join('\n'),
      Metadata: metadata,
    }),
  );
  const event = await pipeline.completion(key, 120_000);
  const detail = event.detail as { output?: unknown; manifest?: unknown };
  const read = async (uri: unknown) => {
    const object = await cloud.clients.s3.send(
      new GetObjectCommand({ Bucket: pipeline.resources.bucket, Key: s3KeyOf(uri) }),
    );
    return (await object.Body?.transformToString()) ?? '';
  };
  const manifest = JSON.parse(await read(detail.manifest)) as Record<string, unknown>;
  const lines = (await read(detail.output))
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { id: string; status: string });
  return { manifest, lines };
}

/** Calls `modelId` from `region` again and again, as another application on the account would. */
function otherApplication(region: string, modelId: string) {
  const client = bedrockClient(cloud.bedrock, { region });
  let stopped = false;
  let spent: () => void = () => {};
  const spending = new Promise<void>((resolve) => {
    spent = resolve;
  });
  const loop = (async () => {
    while (!stopped) {
      // Small calls, one after another: each takes what the pool has refilled before the pipeline can.
      await invoke(client, invokeBody({ max_tokens: 8 }), modelId).catch(() => spent());
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    /** Resolves once the pool's quota is spent: the application's first throttle. */
    spending,
    stop: async () => {
      stopped = true;
      await loop;
      client.destroy();
    },
  };
}
