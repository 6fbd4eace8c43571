import { describe, expect, it } from 'vitest';
import { type BucketState, type BudgetRates, fullBucket } from '../../shared/budget/bucket.ts';
import type { JobSettings } from '../../shared/core/model.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import { parseResultSet } from '../../shared/messages/result-set.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { jobSettingsFrom } from '../../shared/pipeline/job.ts';
import { choosePools } from '../../shared/worker/pools.ts';
import { MemoryBudget, type MemoryObjectStore } from '../support/memory-ports.ts';
import { BUCKET, jobDefaults, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const NOW = 1_000_000;

describe('placing calls on quota pools', () => {
  it.each<[string, BucketState[], number[], number[]]>([
    [
      'the cheaper pool while it has the tokens now, then the one that has them soonest',
      [fullBucket(1_000, NOW), fullBucket(1_000, NOW)],
      [400, 400, 400, 400, 400],
      // The first pool holds two calls now; the second two more; the fifth waits 12 s in either: a tie.
      [0, 0, 1, 1, 0],
    ],
    [
      'past a pool seen in debt',
      [{ ...fullBucket(1_000, NOW), fullAt: NOW + 90_000 }, fullBucket(1_000, NOW)],
      [400, 400],
      [1, 1],
    ],
    [
      'past a pool whose daily quota is spent, though its minute is full',
      [
        { ...fullBucket(1_000, NOW, 10_000), day: { fullAt: NOW + 86_400_000, tokensPerDay: 10_000 } },
        fullBucket(1_000, NOW),
      ],
      [400, 400],
      [1, 1],
    ],
    [
      'past a pool Bedrock throttled within the minute, when both have the tokens now',
      [{ ...fullBucket(1_000, NOW), throttledAt: NOW - 2_000 }, fullBucket(1_000, NOW)],
      [400],
      [1],
    ],
    [
      'more calls to a pool with the larger quota',
      [fullBucket(600, NOW), fullBucket(6_000, NOW)],
      [500, 500, 500, 500],
      [0, 1, 1, 1],
    ],
  ])('takes %s', (_, buckets, charges, expected) => {
    // Act
    const chosen = choosePools(charges, buckets, NOW);

    // Assess
    expect(chosen).toEqual(expected);
  });
});

const deployment: JobSettings = {
  model: 'haiku-4.5',
  region: 'us-west-2',
  endpoint: 'global',
  endpoints: ['global', 'regional', 'in-region'],
  regions: ['us-west-2', 'us-east-1', 'eu-west-1'],
  defaultMaxTokens: 256,
};

describe('a file’s quota pools', () => {
  it.each<[string, Record<string, string>, Partial<JobSettings>]>([
    [
      'the deployment’s, with none of its own',
      {},
      { endpoints: ['global', 'regional', 'in-region'], regions: ['us-west-2', 'us-east-1', 'eu-west-1'] },
    ],
    [
      'its own lists, the first of each preferred',
      { endpoints: 'regional+global', regions: 'us-east-1+us-west-2' },
      {
        endpoint: 'regional',
        endpoints: ['regional', 'global'],
        region: 'us-east-1',
        regions: ['us-east-1', 'us-west-2'],
      },
    ],
    [
      'only kinds no looser than the endpoint it names',
      { endpoint: 'regional', regions: 'us-west-2+us-east-1' },
      { endpoint: 'regional', endpoints: ['regional', 'in-region'] },
    ],
    ['one pool: no lists kept', { endpoint: 'in-region', regions: 'us-west-2' }, { endpoint: 'in-region' }],
  ])('are %s', (_, metadata, expected) => {
    // Act
    const settings = jobSettingsFrom(metadata, deployment);

    // Assess
    expect(settings).toMatchObject(expected);
    if (!('endpoints' in expected)) expect(settings).not.toHaveProperty('endpoints');
  });

  it.each([
    [{ endpoint: 'global', endpoints: 'global' }, /give one/],
    [{ endpoints: 'global+everywhere' }, /everywhere unknown/],
    [{ regions: 'us-west-2+ap-south-1' }, /ap-south-1 not among the deployment's Bedrock regions/],
    // A file kept to its geography may not call from another one.
    [
      { endpoints: 'regional', regions: 'us-west-2+eu-west-1' },
      /file options endpoints and regions: eu-west-1 is in EU, outside US/,
    ],
  ])('refuse %o, saying why', (metadata, message) => {
    expect(() => jobSettingsFrom(metadata, deployment)).toThrow(ConfigurationError);
    expect(() => jobSettingsFrom(metadata, deployment)).toThrow(message);
  });
});

describe('a worker batch over several pools', () => {
  it('spreads the calls where tokens are, names each result’s model id and region, and keeps pinned lines home', async () => {
    // Prepare: a deployment with two source regions; a quota per pool that holds two of these calls now.
    const clock = { now: Date.parse('2026-12-06T10:00:00Z') };
    const budget = new MemoryBudget({ tokensPerMinute: 500 }, () => clock.now);
    const opus = 'global.anthropic.claude-opus-4-6-v1';
    const pipeline = await twoRegionJob(budget, clock, 'inputs/pools.jsonl', [
      ...Array.from({ length: 4 }, (_, index) => plainLine(`r${index}`, 'Hi')),
      plainLine('pinned', 'Pinned', opus),
    ]);

    // Act
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    const targets = pipeline.model.calls.map(({ region, modelId }) => `${region}#${modelId}`);
    expect(new Set(targets)).toEqual(new Set([`us-west-2#${opus}`, `us-east-1#${opus}`]));
    const pinned = pipeline.model.calls.find(({ body }) => JSON.stringify(body).includes('Pinned'));
    expect(pinned?.region).toBe('us-west-2');
    const timings = storedResults(pipeline.store).map((result) => result.timing);
    expect(new Set(timings.map((timing) => `${timing?.region}#${timing?.modelId}`))).toEqual(
      new Set(targets),
    );
    expect(pipeline.outputLines('inputs/pools.jsonl')).toHaveLength(5);
  });
});

describe('a file kept to its geography', () => {
  it('never calls a global profile, however busy its pools are', async () => {
    // Prepare: a quota that holds one call a pool at once.
    const clock = { now: Date.parse('2026-12-06T10:00:00Z') };
    const budget = new MemoryBudget({ tokensPerMinute: 300 }, () => clock.now);
    const pipeline = pipelineHarness({
      budget,
      clock,
      enqueue: {
        defaults: {
          ...jobDefaults,
          endpoints: ['global', 'regional', 'in-region'],
          regions: ['us-west-2', 'us-east-1'],
        },
      },
    });
    const lines = Array.from({ length: 6 }, (_, index) => plainLine(`r${index}`, 'Hi'));
    pipeline.store.putObject(BUCKET, 'inputs/kept.jsonl', lines.join('\n'), { endpoint: 'regional' });
    await startJob(objectCreated('inputs/kept.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);

    // Act
    await pipeline.drain();

    // Assess
    const ids = new Set(pipeline.model.calls.map(({ modelId }) => modelId));
    expect([...ids].some((id) => id.startsWith('global.'))).toBe(false);
    expect(ids).toEqual(new Set(['us.anthropic.claude-opus-4-6-v1', 'anthropic.claude-opus-4-6-v1']));
    expect(pipeline.model.calls).toHaveLength(6);
  });
});

describe('a pool that cannot start its calls as soon as it seemed', () => {
  it('passes them to another pool instead of keeping them waiting', async () => {
    // Prepare: another worker has spent us-west-2's quota; this worker still sees it full.
    const clock = { now: Date.parse('2026-12-06T10:00:00Z') };
    const budget = new MemoryBudget({ tokensPerMinute: 5_000 }, () => clock.now);
    const opus = 'global.anthropic.claude-opus-4-6-v1';
    const home = `us-west-2#${opus}`;
    budget.buckets.set(home, { ...fullBucket(5_000, clock.now), fullAt: clock.now + 60_000 });
    const seen = budget.lastSeen.bind(budget);
    budget.lastSeen = async (key) => (key === home ? fullBucket(5_000, clock.now) : seen(key));
    const pipeline = await twoRegionJob(
      budget,
      clock,
      'inputs/stale.jsonl',
      Array.from({ length: 6 }, (_, index) => plainLine(`r${index}`, 'Hi')),
    );
    const startedAt = clock.now;

    // Act
    const verdicts = await pipeline.workBatch(pipeline.queue.sent.splice(0));

    // Assess: every call made at once, from us-east-1.
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(Array(6).fill('done'));
    expect(new Set(pipeline.model.calls.map(({ region }) => region))).toEqual(new Set(['us-east-1']));
    expect(clock.now - startedAt).toBeLessThan(1_000);
  });
});

describe('a pool left out for having no quota', () => {
  it('gets no call, however full its bucket', async () => {
    // Prepare: us-west-2's pool has a quota of 0 in Service Quotas.
    const { pipeline } = await homePoolJob({ leftOut: { [HOME_POOL]: 'its quota is 0 in us-west-2' } }, 4);

    // Act
    await pipeline.drain();

    // Assess
    expect(new Set(pipeline.model.calls.map(({ region }) => region))).toEqual(new Set(['us-east-1']));
    expect(pipeline.model.calls).toHaveLength(4);
  });
});

describe('a pool whose daily quota is spent', () => {
  it('takes no more calls that day, before Bedrock would say so, while the other pools take them', async () => {
    // Prepare: us-west-2's profile has 2,000 tokens a day; each call is expected to cost 1,289 at first.
    const { pipeline, budget } = await homePoolJob(
      { perKey: { [HOME_POOL]: { tokensPerMinute: 100_000, tokensPerDay: 2_000 } } },
      6,
    );

    // Act
    await pipeline.drain();

    // Assess: one call fits the day at home; the other five go to us-east-1, and nothing waits for a new day.
    const regions = pipeline.model.calls.map(({ region }) => region);
    expect(regions.filter((region) => region === 'us-west-2')).toHaveLength(1);
    expect(regions.filter((region) => region === 'us-east-1')).toHaveLength(5);
    expect(budget.pauses).toEqual([]);
  });
});

/** The home pool of the two-region jobs: us-west-2's global Opus profile. */
const HOME_POOL = 'us-west-2#global.anthropic.claude-opus-4-6-v1';

/** A two-region job of `records` lines under 100,000 tokens a minute, with `rates` for its pools. */
async function homePoolJob(rates: Omit<BudgetRates, 'tokensPerMinute'>, records: number) {
  const clock = { now: Date.parse('2026-12-06T10:00:00Z') };
  const budget = new MemoryBudget({ tokensPerMinute: 100_000, ...rates }, () => clock.now);
  const lines = Array.from({ length: records }, (_, index) => plainLine(`r${index}`, 'Hi'));
  return { pipeline: await twoRegionJob(budget, clock, 'inputs/home-pool.jsonl', lines), budget };
}

/** A job of `lines` started on a deployment with two source regions, its file allowing both. */
async function twoRegionJob(
  budget: MemoryBudget,
  clock: { now: number },
  key: string,
  lines: readonly string[],
) {
  const pipeline = pipelineHarness({
    budget,
    clock,
    enqueue: { defaults: { ...jobDefaults, regions: ['us-west-2', 'us-east-1'] } },
  });
  pipeline.store.putObject(BUCKET, key, lines.join('\n'), { regions: 'us-west-2+us-east-1' });
  await startJob(objectCreated(key), pipeline.ports, pipeline.enqueueSettings, () => false);
  return pipeline;
}

function plainLine(id: string, prompt: string, model?: string): string {
  return JSON.stringify({ id, prompt, max_tokens: 200, ...(model === undefined ? {} : { model }) });
}

function storedResults(store: MemoryObjectStore) {
  return [...store.objects.entries()]
    .filter(([key]) => key.includes('/sets/'))
    .flatMap(([key, object]) => parseResultSet(object.bytes, key));
}
