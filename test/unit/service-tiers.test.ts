import { afterEach, describe, expect, it } from 'vitest';
import { renderReport } from '../../cli/report.ts';
import { tierSentence } from '../../cli/words.ts';
import { jobDefaultsOf } from '../../functions/environment.ts';
import { defaultCatalog, useCatalog } from '../../shared/catalog/catalog.ts';
import { mergeCatalog } from '../../shared/catalog/user-catalog.ts';
import { enqueueSettings, loadConfig } from '../../shared/config.ts';
import { tierRefusalKey } from '../../shared/contract/service-tiers.ts';
import { costOfRequest } from '../../shared/cost/cost.ts';
import { classifyFailure } from '../../shared/failures.ts';
import { emptyTotals, type JobTotals, tierSummary } from '../../shared/output/manifest.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { jobSettingsFrom } from '../../shared/pipeline/job.ts';
import { awsError, HAIKU_FLEX_PRICES, haikuAtFlex } from '../support/factories.ts';
import { MemoryBudget, textResponse } from '../support/memory-ports.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

/** What the enqueue function needs besides the tier. */
const ENQUEUE_ENVIRONMENT = {
  BEDROCK_REGION: 'us-west-2',
  BUCKET_NAME: 'bucket',
  LEDGER_TABLE_NAME: 'ledger',
  RECORD_QUEUE_URL: 'http://127.0.0.1:1/queue/records',
  FINALIZE_QUEUE_URL: 'http://127.0.0.1:1/queue/finalize',
};
const TIER_REFUSAL = 'The provided service tier is not supported for this model.';
const USAGE = { input_tokens: 100, output_tokens: 20 };
/** The built-in catalog with Haiku 4.5 taking flex, at `prices` (null: at prices unknown). */
function catalogWithFlex(prices: typeof HAIKU_FLEX_PRICES | null) {
  return mergeCatalog(haikuAtFlex(prices), 'tiers.json');
}

/** A harness whose Bedrock refuses every tier but default for the models `refuses` picks. */
function refusingHarness(catalog = defaultCatalog, refuses = (_modelId: string) => true) {
  return pipelineHarness({
    worker: { catalog },
    answer: (modelId, _body, _call, serviceTier) => {
      if (serviceTier !== undefined && serviceTier !== 'default' && refuses(modelId))
        throw awsError('ValidationException', 400, TIER_REFUSAL);
      return textResponse('fine', USAGE);
    },
  });
}

const lines = (count: number) =>
  Array.from({ length: count }, (_, index) => `{"id": "r${index}", "prompt": "hello ${index}"}`).join('\n');

afterEach(() => useCatalog(defaultCatalog));

describe('service tiers', () => {
  it("asks for the job's tier, and counts and prices the records at the tier that served them", async () => {
    // Prepare
    const catalog = catalogWithFlex(HAIKU_FLEX_PRICES);
    const pipeline = pipelineHarness({ worker: { catalog }, answer: () => textResponse('fine', USAGE) });

    // Act
    await pipeline.run('inputs/flex.jsonl', lines(3), { model: 'haiku-4.5', tier: 'flex' });

    // Assess
    expect(pipeline.model.calls.map((call) => call.serviceTier)).toEqual(['flex', 'flex', 'flex']);
    const haiku = catalog.findModel('haiku-4.5');
    if (haiku === undefined) throw new Error('no haiku');
    const each = costOfRequest(USAGE, haiku, 'global', 'flex')?.total ?? 0;
    const onDefault = costOfRequest(USAGE, haiku, 'global')?.total ?? 0;
    expect(each).toBe(onDefault / 2);
    expect(pipeline.manifest('inputs/flex.jsonl')).toMatchObject({
      successRecordCount: 3,
      estimatedCostUsd: (3 * each) / 1e9,
      tiers: {
        requested: 'flex',
        servedRecords: { default: 0, priority: 0, flex: 3 },
        downgradedRecords: 0,
        costUsd: { default: 0, priority: 0, flex: (3 * each) / 1e9 },
      },
    });
  });

  it('runs a record on default when Bedrock refuses the tier, with no attempt spent, and the rest of the job goes straight to default', async () => {
    // Prepare
    const pipeline = refusingHarness();
    pipeline.store.putObject(BUCKET, 'inputs/opus.jsonl', lines(6), { tier: 'priority' });
    await startJob(objectCreated('inputs/opus.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);

    // Act
    const verdicts = await pipeline.drain(50, 2);
    await pipeline.finalizeAll();

    // Assess
    // The first batch's two calls may both be refused; every later batch asks for default at once.
    const asked = pipeline.model.calls.map((call) => call.serviceTier ?? 'default');
    const refused = asked.filter((tier) => tier === 'priority').length;
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(refused).toBeLessThanOrEqual(2);
    expect(asked).toHaveLength(6 + refused);
    expect(asked.slice(-4)).toEqual(Array(4).fill('default'));
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(Array(6).fill('done'));
    const [job] = pipeline.ledger.jobs.values();
    expect(job?.tierRefusals).toEqual([tierRefusalKey('global.anthropic.claude-opus-4-6-v1', 'priority')]);
    expect(job?.retries.retried).toBe(0);
    expect(pipeline.manifest('inputs/opus.jsonl')).toMatchObject({
      successRecordCount: 6,
      errorRecordCount: 0,
      tiers: {
        requested: 'priority',
        servedRecords: { default: 6, priority: 0, flex: 0 },
        downgradedRecords: 6,
      },
    });
  });

  it("downgrades only the models that refuse: a file's other model keeps its tier", async () => {
    // Prepare
    const pipeline = refusingHarness(catalogWithFlex(HAIKU_FLEX_PRICES), (modelId) =>
      modelId.includes('opus'),
    );
    const body = '{"id": "h", "prompt": "hi", "model": "haiku-4.5"}\n{"id": "o", "prompt": "hi"}';

    // Act
    await pipeline.run('inputs/mixed.jsonl', body, { tier: 'flex' });

    // Assess
    const [job] = pipeline.ledger.jobs.values();
    expect(job?.tierRefusals).toEqual([tierRefusalKey('global.anthropic.claude-opus-4-6-v1', 'flex')]);
    expect(pipeline.manifest('inputs/mixed.jsonl')).toMatchObject({
      successRecordCount: 2,
      tiers: { requested: 'flex', servedRecords: { default: 1, flex: 1 }, downgradedRecords: 1 },
    });
  });

  it('leaves the cost of records at a tier with no known prices unknown, and says so', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      worker: { catalog: catalogWithFlex(null) },
      answer: () => textResponse('fine', USAGE),
    });

    // Act
    await pipeline.run('inputs/unpriced.jsonl', lines(2), { model: 'haiku-4.5', tier: 'flex' });

    // Assess
    expect(pipeline.manifest('inputs/unpriced.jsonl')).toMatchObject({
      estimatedCostUsd: 0,
      unpriced: { records: 2 },
      tiers: { servedRecords: { flex: 2 }, costUsd: { flex: 0 } },
    });
  });

  it.each([
    [TIER_REFUSAL, true],
    ['Malformed input request: #: extraneous key [serviceTier] is not permitted', false],
  ])('reads a ValidationException saying %j as a tier refusal: %s', (message, refused) => {
    // Act
    const failure = classifyFailure(awsError('ValidationException', 400, message));

    // Assess
    expect(failure).toMatchObject({ tierRefused: refused, retry: 'never', httpStatus: 400 });
  });
});

describe('a batch at a slower tier', () => {
  it.each([
    ['default', ['done', 'done']],
    ['flex', ['done', 'wait']],
  ])('at %s, starts only the calls that can end before the function does: %j', async (tier, kinds) => {
    // Prepare: Haiku takes flex at half speed; 4,500 output tokens take about 30 s on default, 60 s on flex,
    // and the quota holds one call (22,511 tokens) now and the next about 15 s later (the batch may wait 30 s).
    const clock = { now: Date.parse('2026-12-07T10:00:00Z') };
    const pipeline = pipelineHarness({
      clock,
      budget: new MemoryBudget({ tokensPerMinute: 36_000 }, () => clock.now),
      worker: { catalog: catalogWithFlex(HAIKU_FLEX_PRICES), tokensPerMinute: 36_000 },
      answer: () => textResponse('fine', USAGE),
    });
    const body = lines(2).replaceAll('"prompt"', '"max_tokens": 4500, "prompt"');
    pipeline.store.putObject(BUCKET, 'inputs/slow.jsonl', body, { model: 'haiku-4.5', tier });
    await startJob(objectCreated('inputs/slow.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);

    // Act
    const verdicts = await pipeline.workBatch(pipeline.queue.sent.splice(0));

    // Assess
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(kinds);
  });
});

describe('the tier as a file option and a deployment default', () => {
  const deployment = {
    model: 'opus-4.6',
    region: 'us-west-2',
    endpoint: 'global',
    defaultMaxTokens: 256,
  } as const;

  it.each([
    [{ tier: 'flex' }, {}, 'flex'],
    [{}, { tier: 'priority' as const }, 'priority'],
    [{ tier: 'default' }, { tier: 'priority' as const }, 'default'],
    [{}, {}, undefined],
  ])('file options %j over deployment %j give %s', (metadata, defaults, tier) => {
    expect(jobSettingsFrom(metadata, { ...deployment, ...defaults }).tier).toBe(tier);
  });

  it('refuses a tier Bedrock does not have, naming the tiers', () => {
    expect(() => jobSettingsFrom({ tier: 'gold' }, deployment)).toThrow(
      /file option tier must be one of default, priority, flex/,
    );
  });

  it("reads the deployment's DEFAULT_TIER, and leaves default out of the job's settings", () => {
    const settings = (DEFAULT_TIER: string) =>
      jobDefaultsOf(loadConfig(enqueueSettings, { ...ENQUEUE_ENVIRONMENT, DEFAULT_TIER }));
    expect(settings('flex').tier).toBe('flex');
    expect(settings('default')).not.toHaveProperty('tier');
    expect(() => settings('gold')).toThrow(/DEFAULT_TIER/);
  });
});

describe('the tier summary', () => {
  const basics = {
    totalRecordCount: 6,
    successRecordCount: 6,
    errorRecordCount: 0,
    inputTokenCount: 600,
    outputTokenCount: 120,
    estimatedCostUsd: 0.0003,
  };

  it('says per tier the records and cost it served, and the records downgraded, in the run summary and the report', () => {
    // Prepare
    const totals: JobTotals = {
      ...emptyTotals,
      defaultTierRecordCount: 3,
      defaultTierCostNanoUsd: 150_000,
      flexTierRecordCount: 3,
      flexTierCostNanoUsd: 75_000,
      downgradedRecordCount: 3,
    };

    // Act
    const summary = tierSummary(totals, 'flex');

    // Assess
    expect(summary).toEqual({
      requested: 'flex',
      servedRecords: { default: 3, priority: 0, flex: 3 },
      downgradedRecords: 3,
      costUsd: { default: 0.00015, priority: 0, flex: 0.000075 },
    });
    const sentence =
      'asked flex; served default 3 records ($0.000150), flex 3 records ($0.000075); 3 records ran on default: Bedrock does not take flex for their models';
    expect(tierSentence(summary)).toBe(sentence);
    expect(renderReport({ ...basics, tiers: summary })).toContain(`<p data-metric="tiers">${sentence}</p>`);
  });

  it('says nothing of tiers for a job that asked for default and got it', () => {
    // Act
    const summary = tierSummary({ ...emptyTotals, defaultTierRecordCount: 6 }, 'default');

    // Assess
    expect(tierSentence(summary)).toBeUndefined();
    expect(renderReport({ ...basics, tiers: summary })).not.toContain('Service tiers');
  });
});
