import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbTokenBudget } from '../../functions/adapters/dynamodb-budget.ts';
import { DynamoDbJobDirectory } from '../../functions/adapters/dynamodb-job-directory.ts';
import { DynamoDbLedger } from '../../functions/adapters/dynamodb-ledger.ts';
import type { LedgerOptions } from '../../functions/adapters/ledger-writes.ts';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.ts';
import { type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { type PipelineResources, provisionPipeline } from '../../local/pipeline/provision.ts';
import { type BudgetRates, FULL_BUCKET_LEAD_MS } from '../../shared/budget/bucket.ts';
import { tierRefusalKey } from '../../shared/contract/service-tiers.ts';
import type { Ledger } from '../../shared/core/ledger.ts';
import type { JobRecord } from '../../shared/core/model.ts';
import { NO_RETRIES } from '../../shared/core/retries.ts';
import { InputChangedError } from '../../shared/errors.ts';
import { newJobRecord } from '../../shared/pipeline/job.ts';
import { MemoryBudget, MemoryLedger } from '../support/memory-ports.ts';

let cloud: LocalCloud;
let resources: PipelineResources;
beforeAll(async () => {
  cloud = await startLocalCloud({ bedrock: { speed: 0 } });
  resources = await provisionPipeline(cloud.clients, {
    prefix: 'adapters',
    recordVisibilitySeconds: 30,
    finalizeVisibilitySeconds: 30,
  });
}, 90_000);
afterAll(() => cloud.stop());

let jobCount = 0;
function newJob(): JobRecord {
  jobCount += 1;
  return newJobRecord(
    `job-contract-${jobCount}`,
    { bucket: 'b', key: 'inputs/a.jsonl' },
    { model: 'opus-4.6', region: 'us-west-2', endpoint: 'global', defaultMaxTokens: 100 },
    '2026-11-25T10:00:00.000Z',
  );
}

const completion = (lineNumber: number, status: 'succeeded' | 'errored' = 'succeeded') => ({
  lineNumber,
  status,
  family: 'plain' as const,
  inputTokens: 10,
  outputTokens: 4,
  cacheCreationInputTokens: 1,
  cacheReadInputTokens: 2,
  costNanoUsd: 1_000,
  uncachedCostNanoUsd: 1_500,
});

/** The whole numbers from `from` up to, not including, `to`. */
const numbers = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => from + index);

// The same contract, against the in-memory ledger the unit tests use and the DynamoDB one on DynamoDB Local.
// Both count the day's spend, as under a daily cap.
describe.each([
  [
    'MemoryLedger',
    (clock: () => number, options: LedgerOptions) => new MemoryLedger(clock, options) as Ledger,
  ],
  [
    'DynamoDbLedger',
    (clock: () => number, options: LedgerOptions) =>
      new DynamoDbLedger(cloud.clients.documents, resources.tableName, { now: clock, ...options }) as Ledger,
  ],
])('%s', (_name, makeLedger) => {
  let now = Date.parse('2026-11-25T10:00:00Z');
  const ledger = (options: LedgerOptions = { countsDailySpend: true }) => makeLedger(() => now, options);

  it('creates a job once', async () => {
    const subject = ledger();
    const job = newJob();
    expect([await subject.createJob(job), await subject.createJob(job)]).toEqual([true, false]);
    expect(await subject.getJob(job.jobId)).toMatchObject({
      jobId: job.jobId,
      status: 'enqueuing',
      settings: job.settings,
    });
  });

  it('keeps the first reason a job was canceled for, however often it is canceled again', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.cancelJob(job.jobId, 'its spending cap of $1 was reached ($1.02 spent)');
    await subject.cancelJob(job.jobId, 'another reason');
    await subject.cancelJob(job.jobId);
    expect(await subject.getJob(job.jobId)).toMatchObject({
      cancelRequested: true,
      cancelReason: 'its spending cap of $1 was reached ($1.02 spent)',
    });
  });

  it("adds completed records' cost to the day they are counted on (UTC), each record once", async () => {
    // Prepare: a day of its own, so the other specs' completions on the shared table are not in it.
    const before = now;
    now = Date.parse('2031-01-15T23:59:00Z');
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const day = new Date(now).toISOString().slice(0, 10);

    // Act: 150 records (more than one transaction holds), one of them again, then one more a minute later,
    // on the next day.
    const lines = Array.from({ length: 150 }, (_, index) => completion(index + 1));
    await subject.completeRecords([{ jobId: job.jobId, completions: lines, retries: NO_RETRIES }]);
    await subject.completeRecords([{ jobId: job.jobId, completions: [completion(2)], retries: NO_RETRIES }]);
    now += 60_000;
    await subject.completeRecords([
      { jobId: job.jobId, completions: [completion(151)], retries: NO_RETRIES },
    ]);
    const nextDay = new Date(now).toISOString().slice(0, 10);
    const spent = [
      await subject.spentOn(day),
      await subject.spentOn(nextDay),
      await subject.spentOn('2031-12-31'),
    ];
    now = before;

    // Assess
    expect(spent).toEqual([150_000, 1_000, 0]);
  });

  it("keeps no day's spend without a daily cap, so jobs share no item", async () => {
    // Prepare
    const before = now;
    now = Date.parse('2031-02-20T12:00:00Z');
    const subject = ledger({});
    const job = newJob();
    await subject.createJob(job);

    // Act
    await subject.completeRecords([
      { jobId: job.jobId, completions: [completion(1), completion(2)], retries: NO_RETRIES },
    ]);
    const spent = await subject.spentOn('2031-02-20');
    now = before;

    // Assess
    expect(spent).toBe(0);
    expect((await subject.getJob(job.jobId))?.totals.successRecordCount).toBe(2);
  });

  it('gives a record id to the first line that claims it, and to that line again', async () => {
    // Prepare
    const subject = ledger();
    const { jobId } = newJob();
    const claims = (lines: readonly number[]) =>
      lines.map((line) => ({ recordId: `r${line % 250}`, lineNumber: line }));

    // Act: 250 ids (more than one transaction holds), then the same again, then 10 of them from other lines
    // among 40 new ids, in the second transaction's range and past it.
    const first = await subject.claimRecordIds(jobId, claims(numbers(0, 250)));
    const again = await subject.claimRecordIds(jobId, claims(numbers(0, 250)));
    const mixed = await subject.claimRecordIds(jobId, [
      ...claims(numbers(390, 400)).map((claim) => ({ ...claim, lineNumber: claim.lineNumber + 1_000 })),
      ...numbers(0, 40).map((line) => ({ recordId: `new-${line}`, lineNumber: 2_000 + line })),
    ]);
    const newOnesAgain = await subject.claimRecordIds(
      jobId,
      numbers(0, 40).map((line) => ({ recordId: `new-${line}`, lineNumber: 3_000 + line })),
    );

    // Assess
    expect(first.size).toBe(0);
    expect(again.size).toBe(0);
    expect(mixed).toEqual(new Map(numbers(140, 150).map((line) => [`r${line}`, line])));
    expect(newOnesAgain).toEqual(new Map(numbers(0, 40).map((line) => [`new-${line}`, 2_000 + line])));
  });

  it('claims the same ids for the same lines twice at once without a refusal', async () => {
    // Prepare
    const subject = ledger();
    const { jobId } = newJob();
    const claims = numbers(1, 60).map((line) => ({ recordId: `same-${line}`, lineNumber: line }));

    // Act
    const both = await Promise.all([
      subject.claimRecordIds(jobId, claims),
      subject.claimRecordIds(jobId, claims),
    ]);

    // Assess
    expect(both.map((holders) => holders.size)).toEqual([0, 0]);
    expect(await subject.claimRecordIds(jobId, [{ recordId: 'same-7', lineNumber: 70 }])).toEqual(
      new Map([['same-7', 7]]),
    );
  });

  it('leases a record to one attempt at a time, counting attempts, until the lease runs out', async () => {
    const subject = ledger();
    const { jobId } = newJob();
    const first = await subject.leaseRecord(jobId, 1, 'a', 60, 'set-a');
    const whileHeld = await subject.leaseRecord(jobId, 1, 'b', 60, 'set-b');
    await subject.releaseRecord(jobId, 1, 'a', { failed: 'retryable', unanswered: true });
    const afterRelease = await subject.leaseRecord(jobId, 1, 'b', 60, 'set-b');
    now += 61_000;
    const afterExpiry = await subject.leaseRecord(jobId, 1, 'c', 60, 'set-c');
    // A released attempt stored nothing; one whose lease ran out may have stored its result in its set. Of
    // the two attempts before the third, one released the record (its call unanswered): the other was abandoned.
    expect([first, whileHeld, afterRelease, afterExpiry]).toEqual([
      { kind: 'acquired', attempt: 1, failures: {}, releases: 0, unanswered: 0 },
      { kind: 'held' },
      { kind: 'acquired', attempt: 2, failures: { retryable: 1 }, releases: 1, unanswered: 1 },
      {
        kind: 'acquired',
        attempt: 3,
        failures: { retryable: 1 },
        releases: 1,
        unanswered: 1,
        earlierSet: 'set-b',
      },
    ]);
  });

  it('leases records asked for at once as it would one by one: new, held, released, done, asked twice', async () => {
    // Prepare: line 2 held by another attempt, line 3 released after a failure, line 4 done.
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const { jobId } = job;
    await subject.leaseRecord(jobId, 2, 'other', 60, 'set-o');
    await subject.leaseRecord(jobId, 3, 'other', 60, 'set-o');
    await subject.releaseRecord(jobId, 3, 'other', { failed: 'limited' });
    await subject.completeRecords([{ jobId, completions: [completion(4)], retries: NO_RETRIES }]);
    const fresh = numbers(5, 130);

    // Act: 130 leases in one turn (more than a transaction holds), line 1 twice.
    const leases = await Promise.all(
      [1, 1, 2, 3, 4, ...fresh].map((line) => subject.leaseRecord(jobId, line, 'me', 60, 'set-me')),
    );

    // Assess
    const first = { kind: 'acquired', attempt: 1, failures: {}, releases: 0, unanswered: 0 };
    // Line 1 asked twice: one of the two takes it, whichever comes first.
    expect(leases.slice(0, 2)).toEqual(expect.arrayContaining([first, { kind: 'held' }]));
    expect(leases.slice(2, 5)).toEqual([
      { kind: 'held' },
      { kind: 'acquired', attempt: 2, failures: { limited: 1 }, releases: 1, unanswered: 0 },
      { kind: 'done' },
    ]);
    expect(leases.slice(5)).toEqual(fresh.map(() => first));
    expect(await subject.leaseRecord(jobId, 7, 'late', 60, 'set-late')).toEqual({ kind: 'held' });
  });

  it('counts failures per retry class, so each class is limited by its own', async () => {
    const subject = ledger();
    const { jobId } = newJob();
    for (const failed of ['retryable', 'retryable', 'limited', 'later'] as const) {
      await subject.leaseRecord(jobId, 1, 'a', 60, 'set-a');
      await subject.releaseRecord(jobId, 1, 'a', { failed });
    }
    expect(await subject.leaseRecord(jobId, 1, 'a', 60, 'set-a')).toEqual({
      kind: 'acquired',
      attempt: 5,
      failures: { retryable: 2, limited: 1, later: 1 },
      releases: 4,
      unanswered: 0,
    });
  });

  it('counts the records each quota pool answered, a pool at a time, in jobs of any age', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const west = 'us-west-2#global.anthropic.claude-haiku-4-5-20251001-v1:0';
    const east = 'us-east-1#us.anthropic.claude-haiku-4-5-20251001-v1:0';
    await subject.completeRecords([
      {
        jobId: job.jobId,
        completions: [{ ...completion(1), pool: west }, { ...completion(2), pool: east }, completion(3)],
        retries: NO_RETRIES,
      },
    ]);
    await subject.completeRecords([
      { jobId: job.jobId, completions: [{ ...completion(4), pool: west }], retries: NO_RETRIES },
    ]);
    expect((await subject.getJob(job.jobId))?.poolRecords).toEqual({ [west]: 2, [east]: 1 });
  });

  it('counts the records each service tier answered and what they cost there, and the records downgraded', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.completeRecords([
      {
        jobId: job.jobId,
        completions: [
          { ...completion(1), servedTier: 'flex' },
          { ...completion(2), servedTier: 'default', downgraded: true },
          { ...completion(3), servedTier: 'flex' },
          completion(4, 'errored'),
        ],
        retries: NO_RETRIES,
      },
    ]);
    expect((await subject.getJob(job.jobId))?.totals).toMatchObject({
      flexTierRecordCount: 2,
      flexTierCostNanoUsd: 2_000,
      defaultTierRecordCount: 1,
      defaultTierCostNanoUsd: 1_000,
      priorityTierRecordCount: 0,
      downgradedRecordCount: 1,
    });
  });

  it("remembers the tiers Bedrock refused a job's models, each once", async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const opus = 'global.anthropic.claude-opus-4-6-v1';
    expect((await subject.getJob(job.jobId))?.tierRefusals).toEqual([]);
    await subject.refuseTier(job.jobId, opus, 'flex');
    await subject.refuseTier(job.jobId, opus, 'flex');
    await subject.refuseTier(job.jobId, opus, 'priority');
    expect([...((await subject.getJob(job.jobId))?.tierRefusals ?? [])].sort()).toEqual([
      tierRefusalKey(opus, 'flex'),
      tierRefusalKey(opus, 'priority'),
    ]);
  });

  it('counts a record once, adds its tokens and cost, and says done from then on', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.leaseRecord(job.jobId, 1, 'a', 60, 'set-a');
    const once = [{ jobId: job.jobId, completions: [completion(1)], retries: NO_RETRIES }];
    expect([await subject.completeRecords(once), await subject.completeRecords(once)]).toEqual([
      [{ jobId: job.jobId, lineNumber: 1 }],
      [],
    ]);
    await subject.completeRecords([
      { jobId: job.jobId, completions: [completion(2, 'errored')], retries: NO_RETRIES },
    ]);
    expect(await subject.doneRecords(job.jobId, [1, 2, 3])).toEqual(new Set([1, 2]));
    expect(await subject.leaseRecord(job.jobId, 1, 'b', 60, 'set-b')).toEqual({ kind: 'done' });
    expect(await subject.getJob(job.jobId)).toMatchObject({
      doneRecords: 2,
      familyCounts: { plain: 2 },
      totals: expect.objectContaining({
        successRecordCount: 1,
        errorRecordCount: 1,
        inputTokenCount: 20,
        outputTokenCount: 8,
        cacheCreationInputTokenCount: 2,
        cacheReadInputTokenCount: 4,
        cacheHitRecordCount: 2,
        cacheMissRecordCount: 0,
        costNanoUsd: 2_000,
        uncachedCostNanoUsd: 3_000,
      }),
    });
  });

  it('says which records are done for more lines than one BatchGetItem reads, a line named twice too', async () => {
    // Prepare: 120 of 130 lines done, and one line started but not done.
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const doneLines = Array.from({ length: 120 }, (_, index) => index + 1);
    await subject.completeRecords([
      { jobId: job.jobId, completions: doneLines.map((line) => completion(line)), retries: NO_RETRIES },
    ]);
    await subject.leaseRecord(job.jobId, 125, 'a', 60, 'set-a');

    // Act
    const done = await subject.doneRecords(job.jobId, [
      ...Array.from({ length: 130 }, (_, index) => index + 1),
      // A message delivered twice in one batch names its line twice.
      7,
      125,
    ]);

    // Assess
    expect([...done].sort((a, b) => a - b)).toEqual(doneLines);
  });

  it("counts a batch across jobs in one call, leaving out records done before and adding each job's retries", async () => {
    const subject = ledger();
    const [first, second] = [newJob(), newJob()];
    await subject.createJob(first);
    await subject.createJob(second);
    await subject.completeRecords([
      { jobId: first.jobId, completions: [completion(2)], retries: NO_RETRIES },
    ]);

    const counted = await subject.completeRecords([
      {
        jobId: first.jobId,
        // Line 3's model has no known price: counted, its cost unknown.
        completions: [completion(1), completion(2), { ...completion(3, 'errored'), unpriced: true }],
        retries: { ...NO_RETRIES, retried: 2, bedrockThrottles: 1, receives: 3, bedrockCalls: 2 },
      },
      { jobId: second.jobId, completions: [], retries: { ...NO_RETRIES, budgetWaits: 4, sentBackToWait: 5 } },
    ]);

    expect(counted).toEqual([
      { jobId: first.jobId, lineNumber: 1 },
      { jobId: first.jobId, lineNumber: 3 },
    ]);
    expect(await subject.getJob(first.jobId)).toMatchObject({
      doneRecords: 3,
      totals: expect.objectContaining({
        successRecordCount: 2,
        errorRecordCount: 1,
        inputTokenCount: 30,
        unpricedRecordCount: 1,
      }),
      retries: { ...NO_RETRIES, retried: 2, bedrockThrottles: 1, receives: 3, bedrockCalls: 2 },
    });
    expect(await subject.getJob(second.jobId)).toMatchObject({
      doneRecords: 0,
      retries: { ...NO_RETRIES, budgetWaits: 4, sentBackToWait: 5 },
    });
  });

  it('counts more records than one transaction holds', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const completions = Array.from({ length: 250 }, (_, index) => completion(index + 1));

    const counted = await subject.completeRecords([{ jobId: job.jobId, completions, retries: NO_RETRIES }]);

    expect(counted).toHaveLength(250);
    expect(await subject.getJob(job.jobId)).toMatchObject({ doneRecords: 250 });
  });

  it('lists the counted records after a line, in line order, each with the set of the attempt counted', async () => {
    // Prepare: lines 1-3 counted from one set, 4-5 from another; line 3 counted again from a third (a racing
    // attempt, left out); line 6 only started; an id claimed in the same partition.
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const count = (lines: number[], resultSet: string) =>
      subject.completeRecords([
        {
          jobId: job.jobId,
          completions: lines.map((line) => completion(line)),
          retries: NO_RETRIES,
          resultSet,
        },
      ]);
    await count([1, 2, 3], 'set-x');
    await count([4, 5], 'set-y');
    await count([3], 'set-z');
    await subject.leaseRecord(job.jobId, 6, 'a', 60, 'set-a');
    await subject.claimRecordIds(job.jobId, [{ recordId: 'r7', lineNumber: 7 }]);

    // Act
    const counted = [];
    for await (const entry of subject.countedRecords(job.jobId, 2)) counted.push(entry);

    // Assess
    expect(counted).toEqual([
      { lineNumber: 3, resultSet: 'set-x' },
      { lineNumber: 4, resultSet: 'set-y' },
      { lineNumber: 5, resultSet: 'set-y' },
    ]);
  });

  it('takes back the attempt of a release that waited for quota', async () => {
    const subject = ledger();
    const { jobId } = newJob();
    await subject.leaseRecord(jobId, 1, 'a', 60, 'set-a');
    await subject.releaseRecord(jobId, 1, 'a', { waited: true });
    expect(await subject.leaseRecord(jobId, 1, 'b', 60, 'set-b')).toEqual({
      kind: 'acquired',
      attempt: 1,
      failures: {},
      releases: 0,
      unanswered: 0,
    });
  });

  it('lets one reader at a time read an enqueuing file, saving progress only while it holds the lease', async () => {
    // Prepare
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const first = { owner: 'reader-1', leaseSeconds: 60 };
    const second = { owner: 'reader-2', leaseSeconds: 60 };
    const progress = { readOffset: 120, readLine: 7, recordsRead: 6, invalidLines: 2 };

    // Act
    const firstLease = await subject.leaseReading(job.jobId, first);
    const whileHeld = await subject.leaseReading(job.jobId, second);
    const savedByHolder = await subject.saveReadProgress(job.jobId, progress, first);
    now += 61_000;
    const afterExpiry = await subject.leaseReading(job.jobId, second);
    const savedByFormerHolder = await subject.saveReadProgress(job.jobId, progress, first);
    await subject.releaseReading(job.jobId, 'reader-2');
    const afterRelease = await subject.leaseReading(job.jobId, first);

    // Assess
    expect(firstLease).toMatchObject({ jobId: job.jobId, readOffset: 0 });
    expect(whileHeld).toBeUndefined();
    expect(savedByHolder).toBe(true);
    expect(afterExpiry).toMatchObject(progress);
    expect(savedByFormerHolder).toBe(false);
    expect(afterRelease).toMatchObject({ readOffset: 120 });
  });

  it('fails a job whose file cannot be read on, once, keeping its event until it is published', async () => {
    // Prepare
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.leaseReading(job.jobId, { owner: 'reader-1', leaseSeconds: 60 });
    const announcement = { detailType: 'Batch Job Failed', detail: { jobId: job.jobId, reason: 'changed' } };

    // Act
    const ending = { status: 'superseded', reason: 'changed' } as const;
    const failed = await subject.failReading(job.jobId, ending, '2026-11-25T10:05:00.000Z', announcement);
    const again = await subject.failReading(
      job.jobId,
      { status: 'failed', reason: 'again' },
      '2026-11-25T10:06:00.000Z',
      announcement,
    );

    // Assess
    expect([failed, again]).toEqual([true, false]);
    expect(await subject.getJob(job.jobId)).toMatchObject({
      status: 'superseded',
      failureReason: 'changed',
      finishedAt: '2026-11-25T10:05:00.000Z',
      cancelRequested: true,
      announcement,
    });
    expect(await activeJobIds(subject)).toContain(job.jobId);
  });

  it("keeps a decompression's checkpoint while it holds the lease, and the copy with its notice once whole", async () => {
    // Prepare
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const holder = { owner: 'reader-1', leaseSeconds: 60 };
    await subject.leaseReading(job.jobId, holder);
    const checkpoint = { uploadId: 'upload-1', parts: [{ part: 1, etag: '"e1"' }], bytes: 8_388_608 };
    const copy = { bucket: 'b', key: `work/${job.jobId}/input.jsonl`, etag: '"copy"' };

    // Act
    const byOther = await subject.saveDecompressing(job.jobId, checkpoint, { ...holder, owner: 'reader-2' });
    const byHolder = await subject.saveDecompressing(job.jobId, checkpoint, holder);
    const midway = await subject.getJob(job.jobId);
    const whole = await subject.saveDecompressed(job.jobId, copy, holder, 'cut short');

    // Assess
    expect([byOther, byHolder, whole]).toEqual([false, true, true]);
    expect(midway).toMatchObject({ decompressing: checkpoint, decompressed: undefined });
    expect(await subject.getJob(job.jobId)).toMatchObject({
      decompressing: undefined,
      decompressed: copy,
      inputNotice: 'cut short',
    });
  });

  it('leases no reading once the file is read', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.setTotal(job.jobId, 3);
    expect(await subject.leaseReading(job.jobId, { owner: 'reader-1', leaseSeconds: 60 })).toBeUndefined();
  });

  it('cancels unfinished jobs only, and lists unfinished jobs and jobs whose event is not yet published', async () => {
    // Prepare
    const subject = ledger();
    const running = newJob();
    const finished = newJob();
    const announcement = {
      detailType: 'Batch Job Completed',
      detail: { jobId: finished.jobId, counts: { total: 0 } },
    };
    await subject.createJob(running);
    await subject.createJob(finished);
    await subject.setTotal(finished.jobId, 0);
    await subject.claimFinalization(finished.jobId);

    // Act
    const ended = await subject.finishJob(
      finished.jobId,
      { status: 'superseded', reason: 'replaced by job-2' },
      '2026-11-25T11:00:00.000Z',
      announcement,
    );
    const endedTwice = await subject.finishJob(
      finished.jobId,
      { status: 'completed' },
      '2026-11-25T11:00:00.000Z',
      announcement,
    );
    const activeBeforeAnnounced = await activeJobIds(subject);
    await subject.markAnnounced(finished.jobId);
    const activeAfterAnnounced = await activeJobIds(subject);

    // Assess
    expect([ended, endedTwice]).toEqual([true, false]);
    expect(await subject.cancelJob(running.jobId)).toBe(true);
    expect(await subject.cancelJob(finished.jobId)).toBe(false);
    expect(await subject.getJob(running.jobId)).toMatchObject({ cancelRequested: true });
    expect(activeBeforeAnnounced).toEqual(expect.arrayContaining([running.jobId, finished.jobId]));
    expect(activeAfterAnnounced).toContain(running.jobId);
    expect(activeAfterAnnounced).not.toContain(finished.jobId);
    expect(await subject.getJob(finished.jobId)).toMatchObject({
      status: 'superseded',
      failureReason: 'replaced by job-2',
      finishedAt: '2026-11-25T11:00:00.000Z',
      announcement: undefined,
    });
  });

  it('gives the publishing of a pending event to one step at a time, until it is released, its claim runs out, or it is published', async () => {
    // Prepare
    const subject = ledger();
    const [pending, quiet] = [newJob(), newJob()];
    const announcement = { detailType: 'Batch Job Completed', detail: { jobId: pending.jobId } };
    for (const job of [pending, quiet]) {
      await subject.createJob(job);
      await subject.setTotal(job.jobId, 0);
      await subject.claimFinalization(job.jobId);
    }
    await subject.finishJob(pending.jobId, { status: 'completed' }, '2026-11-25T11:00:00.000Z', announcement);
    const claim = () => subject.claimAnnouncement(pending.jobId, 30);

    // Act
    const first = [await claim(), await claim()];
    await subject.releaseAnnouncement(pending.jobId);
    const afterRelease = [await claim(), await claim()];
    now += 31_000;
    const afterLease = await claim();
    await subject.markAnnounced(pending.jobId);
    const afterPublished = await claim();
    const nonePending = await subject.claimAnnouncement(quiet.jobId, 30);
    now -= 31_000;

    // Assess
    expect({ first, afterRelease, afterLease, afterPublished, nonePending }).toEqual({
      first: [true, false],
      afterRelease: [true, false],
      afterLease: true,
      afterPublished: false,
      nonePending: false,
    });
  });

  it('gives the write of a shared prefix to one worker at a time, until it is written or its claim runs out', async () => {
    // Prepare
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const model = 'global.anthropic.claude-opus-4-6-v1';
    const at = (time: number, owner: string) => ({
      owner,
      until: time + 60_000,
      freshAfter: time - 240_000,
      now: time,
    });
    const start = Date.parse('2026-11-26T10:00:00Z');

    // Act
    const claims = [
      await subject.claimPrefixWrite(job.jobId, model, at(start, 'a')),
      await subject.claimPrefixWrite(job.jobId, model, at(start + 1_000, 'b')),
      await subject.claimPrefixWrite(job.jobId, model, at(start + 61_000, 'c')),
    ];
    await subject.markPrefixWritten(job.jobId, model, start + 62_000);
    const afterWrite = await subject.claimPrefixWrite(job.jobId, model, at(start + 63_000, 'd'));
    const stale = await subject.claimPrefixWrite(job.jobId, model, at(start + 62_000 + 241_000, 'e'));

    // Assess: b waits for a; c takes the write over once a's claim ran out; e rewrites once the write is stale.
    expect(claims).toEqual(['write', 'busy', 'write']);
    expect([afterWrite, stale]).toEqual(['written', 'write']);
  });

  it('records the prefixes a job shares once', async () => {
    // Prepare
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const prefix = { blocks: 1, fingerprint: 'f'.repeat(64), tokens: 6_000 };

    // Act
    const recorded = [
      await subject.setSharedPrefixes(job.jobId, { 'global.anthropic.claude-opus-4-6-v1': prefix }),
      await subject.setSharedPrefixes(job.jobId, {}),
    ];

    // Assess
    expect(recorded).toEqual([true, false]);
    expect((await subject.getJob(job.jobId))?.sharedPrefixes).toEqual({
      'global.anthropic.claude-opus-4-6-v1': prefix,
    });
  });

  it('plans batch parts once and moves each part on only from the states given', async () => {
    // Prepare
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    const part = { part: 0, records: 150, bytes: 30_000, state: 'staged' as const };

    // Act
    const planned = [
      await subject.planBatchParts(job.jobId, { 'part-00000': part }),
      await subject.planBatchParts(job.jobId, { 'part-00000': { ...part, records: 1 } }),
    ];
    const submitted = {
      ...part,
      state: 'submitted' as const,
      jobArn: 'arn:aws:bedrock:us-west-2:1:model-invocation-job/x',
    };
    const moves = [
      await subject.moveBatchPart(job.jobId, ['staged'], submitted),
      await subject.moveBatchPart(job.jobId, ['staged'], { ...part, state: 'on-demand' }),
      await subject.moveBatchPart(job.jobId, ['submitted'], {
        ...submitted,
        state: 'collected',
        endedAs: 'Stopped',
      }),
    ];

    // Assess
    expect(planned).toEqual([true, false]);
    expect(moves).toEqual([true, false, true]);
    expect((await subject.getJob(job.jobId))?.batchParts).toEqual({
      'part-00000': { ...submitted, state: 'collected', endedAs: 'Stopped' },
    });
  });

  it("keeps a failed job on the sweeper's list until its event is published", async () => {
    const subject = ledger();
    const failed = {
      ...newJob(),
      status: 'failed' as const,
      announcement: { detailType: 'Batch Job Failed', detail: { reason: 'bad option' } },
    };
    await subject.createJob(failed);
    expect(await subject.getJob(failed.jobId)).toMatchObject({ announcement: failed.announcement });
    expect(await activeJobIds(subject)).toContain(failed.jobId);
    await subject.markAnnounced(failed.jobId);
    expect(await activeJobIds(subject)).not.toContain(failed.jobId);
  });
});

// Jobs as `jobs` and a lookup by S3 URI find them, in memory and on DynamoDB Local: created later than the
// other specs' jobs, so they are the newest.
describe.each([
  [
    'MemoryLedger',
    () => {
      const ledger = new MemoryLedger();
      return { ledger, directory: ledger };
    },
  ],
  [
    'DynamoDbJobDirectory',
    () => ({
      ledger: new DynamoDbLedger(cloud.clients.documents, resources.tableName),
      directory: new DynamoDbJobDirectory(cloud.clients.documents, resources.tableName),
    }),
  ],
])('%s as a job directory', (_name, makeDirectory) => {
  const job = (id: string, key: string, createdAt: string): JobRecord =>
    newJobRecord(id, { bucket: 'directory', key, versionId: id }, newJob().settings, createdAt);

  it('lists the newest jobs first, and finds the newest job of an object whichever version it ran', async () => {
    // Prepare
    const { ledger, directory } = makeDirectory();
    const suffix = _name.toLowerCase();
    const jobs = [
      job(`job-old-${suffix}`, 'inputs/a.jsonl', '2030-01-01T10:00:00.000Z'),
      job(`job-other-${suffix}`, 'inputs/b.jsonl', '2030-01-01T11:00:00.000Z'),
      job(`job-new-${suffix}`, 'inputs/a.jsonl', '2030-01-01T12:00:00.000Z'),
    ];
    for (const each of jobs) await ledger.createJob(each);

    // Act
    const recent = await directory.recentJobs(2);
    const ofA = await directory.newestJobOf({ bucket: 'directory', key: 'inputs/a.jsonl' });
    const ofB = await directory.newestJobOf({ bucket: 'directory', key: 'inputs/b.jsonl' });
    const ofNone = await directory.newestJobOf({ bucket: 'directory', key: 'inputs/none.jsonl' });

    // Assess
    expect(recent.map((each) => each.jobId)).toEqual([`job-new-${suffix}`, `job-other-${suffix}`]);
    expect(ofA).toMatchObject({
      jobId: `job-new-${suffix}`,
      status: 'enqueuing',
      source: { key: 'inputs/a.jsonl' },
    });
    expect(ofB?.jobId).toBe(`job-other-${suffix}`);
    expect(ofNone).toBeUndefined();
  });
});

async function activeJobIds(ledger: Ledger): Promise<string[]> {
  const ids: string[] = [];
  for await (const job of ledger.listActiveJobs()) ids.push(job.jobId);
  return ids;
}

describe('DynamoDbLedger reading jobs written before', () => {
  it("reads a job canceled when the status was spelt 'cancelled' as canceled", async () => {
    // Prepare
    const ledger = new DynamoDbLedger(cloud.clients.documents, resources.tableName);
    const job = { ...newJob(), status: 'canceled' as const };
    await ledger.createJob(job);
    await cloud.clients.documents.send(
      new UpdateCommand({
        TableName: resources.tableName,
        Key: { pk: `JOB#${job.jobId}`, sk: 'JOB' },
        UpdateExpression: 'SET #status = :old',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':old': 'cancelled' },
      }),
    );

    // Act
    const read = await ledger.getJob(job.jobId);

    // Assess
    expect(read?.status).toBe('canceled');
  });
});

describe('DynamoDbLedger retention', () => {
  it('lets finished records and claimed ids expire by TTL', async () => {
    // Prepare
    const now = Date.parse('2026-11-25T10:00:00Z');
    const ledger = new DynamoDbLedger(cloud.clients.documents, resources.tableName, {
      now: () => now,
      retentionDays: 7,
    });
    const job = newJob();
    await ledger.createJob(job);

    // Act
    await ledger.claimRecordIds(job.jobId, [{ recordId: 'r1', lineNumber: 1 }]);
    await ledger.completeRecords([{ jobId: job.jobId, completions: [completion(1)], retries: NO_RETRIES }]);

    // Assess
    const item = async (sk: string) =>
      (
        await cloud.clients.documents.send(
          new GetCommand({ TableName: resources.tableName, Key: { pk: `JOB#${job.jobId}`, sk } }),
        )
      ).Item;
    expect((await item('ID#r1'))?.expiresAt).toBe(now / 1000 + 7 * 86_400);
    expect((await item('REC#0000000001'))?.expiresAt).toBe(now / 1000 + 7 * 86_400);
  });

  it('lets a finished job expire by TTL, and keeps a running one', async () => {
    // Prepare
    const now = Date.parse('2026-11-25T10:00:00Z');
    const ledger = new DynamoDbLedger(cloud.clients.documents, resources.tableName, {
      now: () => now,
      retentionDays: 7,
    });
    const finished = newJob();
    const running = newJob();
    await ledger.createJob(finished);
    await ledger.createJob(running);
    await ledger.setTotal(finished.jobId, 0);
    await ledger.claimFinalization(finished.jobId);

    // Act
    await ledger.finishJob(finished.jobId, { status: 'completed' }, '2026-11-25T10:00:00.000Z', {
      detailType: 'Batch Job Completed',
      detail: {},
    });

    // Assess
    const item = async (jobId: string) =>
      (
        await cloud.clients.documents.send(
          new GetCommand({ TableName: resources.tableName, Key: { pk: `JOB#${jobId}`, sk: 'JOB' } }),
        )
      ).Item;
    expect((await item(finished.jobId))?.expiresAt).toBe(now / 1000 + 7 * 86_400);
    expect((await item(running.jobId))?.expiresAt).toBeUndefined();
  });
});

// The same contract for the shared budget, in memory and on DynamoDB Local, on a clock the test moves: two
// workers share one budget, as two Lambda instances share the DynamoDB item (in memory, one object).
describe.each([
  [
    'MemoryBudget',
    (clock: () => number, rates: BudgetRates) => {
      const shared = new MemoryBudget(rates, clock);
      return [shared, shared] as const;
    },
  ],
  [
    'DynamoDbTokenBudget',
    (clock: () => number, rates: BudgetRates) => {
      const worker = () =>
        new DynamoDbTokenBudget(cloud.clients.documents, resources.tableName, rates, clock);
      return [worker(), worker()] as const;
    },
  ],
])('%s', (_name, makeWorkers) => {
  let now = Date.parse('2026-11-25T10:00:45Z');
  let keyCount = 0;
  const newKey = () => {
    keyCount += 1;
    return `us-west-2#model-${keyCount}`;
  };
  const workers = (tokensPerMinute = 60_000, perKey: BudgetRates['perKey'] = {}) =>
    makeWorkers(() => now, { tokensPerMinute, perKey });

  it('shares one bucket between workers: what one takes, the other waits for', async () => {
    const [a, b] = workers();
    const key = newKey();
    const first = await a.reserve(key, [40_000], now + 30_000);
    const second = await b.reserve(key, [30_000], now + 30_000);
    expect(first).toEqual({ key, tokens: 40_000, startAts: [now], retryAt: undefined });
    // 20,000 tokens left, refilling from a full bucket's lead after the first take: the other 10,000 are
    // there 10 s after that at 60,000 a minute.
    expect(second).toEqual({
      key,
      tokens: 30_000,
      startAts: [now + FULL_BUCKET_LEAD_MS + 10_000],
      retryAt: undefined,
    });
  });

  it('grants the calls that can start by the deadline and says when the next could', async () => {
    const [a] = workers();
    const key = newKey();
    const reservation = await a.reserve(key, [30_000, 30_000, 10_000, 10_000], now + 5_000);
    // The bucket holds the first two at once; the third waits 10 s (and the lead) for its refill, past the
    // deadline.
    expect(reservation).toEqual({
      key,
      tokens: 60_000,
      startAts: [now, now],
      retryAt: now + FULL_BUCKET_LEAD_MS + 10_000,
    });
  });

  it('takes nothing when even the first call cannot start in time', async () => {
    const [a, b] = workers();
    const key = newKey();
    await a.reserve(key, [60_000], now);
    const refused = await b.reserve(key, [6_000], now + 5_000);
    // Empty, refilling from the lead on: 6,000 tokens are there 6 s after it.
    const refilled = now + FULL_BUCKET_LEAD_MS + 6_000;
    expect(refused).toEqual({ key, tokens: 0, startAts: [], retryAt: refilled });
    expect(await b.reserve(key, [6_000], refilled)).toMatchObject({ startAts: [refilled] });
  });

  it('settles to what Bedrock charged: giving back what was not used, or going into debt', async () => {
    const [a, b] = workers();
    const key = newKey();
    const reservation = await a.reserve(key, [30_000], now);
    await a.settle(reservation, 10_000);
    const afterRefund = await b.reserve(key, [50_000], now + 60_000);
    await b.settle(afterRefund, 80_000);
    const afterDebt = await a.reserve(key, [1_000], now + 120_000);
    // 50,000 tokens are left after the refund, less the lead's refill not yet counted: 50,000 are there when
    // the lead is over. The debt then leaves -30,000 at that point, so 1,000 more are there 31 s after it.
    expect(afterRefund.startAts).toEqual([now + FULL_BUCKET_LEAD_MS]);
    expect(afterDebt.startAts).toEqual([now + FULL_BUCKET_LEAD_MS + 31_000]);
  });

  it('refills continuously while the clock moves', async () => {
    const [a] = workers();
    const key = newKey();
    await a.reserve(key, [60_000], now);
    now += 20_000;
    const later = await a.reserve(key, [20_000, 10_000], now + 60_000);
    // 20 s of refill, counted from the lead after the first take.
    const refilled = 20_000 - FULL_BUCKET_LEAD_MS;
    expect(later.startAts).toEqual([now + 20_000 - refilled, now + 30_000 - refilled]);
  });

  it('empties the bucket at a first throttle, keeping the rate', async () => {
    const [a, b] = workers();
    const key = newKey();
    await a.reserve(key, [30_000], now);
    await a.recordThrottle(key);
    const afterThrottle = await b.reserve(key, [6_000], now + 120_000);
    // Empty now, as Bedrock's bucket is: 6,000 tokens are there 6 s later at 60,000 a minute.
    expect(afterThrottle.startAts).toEqual([now + 6_000]);
  });

  it('lowers the rate at a throttle within a minute of the last, keeping what was spent spent', async () => {
    const [a, b] = workers();
    const key = newKey();
    await a.recordThrottle(key);
    now += 10_000;
    await b.recordThrottle(key);
    const afterThrottles = await a.reserve(key, [42_000], now + 120_000);
    // Emptied 10 s ago, 50,000 short of 60,000; at 42,000 a minute that is empty, and full again, 42,000, a
    // minute later.
    expect(afterThrottles.startAts[0] ?? 0).toBeCloseTo(now + 60_000, -1);
  });

  it('says when all it granted may be spent: sooner once a batch gives tokens back', async () => {
    const [a, b] = workers();
    const key = newKey();
    const taken = await a.reserve(key, [70_000], now);
    const later = await a.reserve(key, [20_000], now + 60_000);
    const before = await b.spendableFrom(key);
    await a.settle(taken, 40_000);
    const after = await b.spendableFrom(key);
    // The 20,000 granted after the first 70,000 could be spent from when they were granted; 30,000 given
    // back, a token a millisecond, bring that 30 s sooner.
    expect(before).toBe(later.startAts[0]);
    expect(after).toBe(before - 30_000);
  });

  it('stops a pool at its daily quota before Bedrock would, and takes back what answers did not use', async () => {
    // Prepare: 100,000 tokens a day against 60,000 a minute.
    const key = newKey();
    const [a, b] = workers(60_000, { [key]: { tokensPerMinute: 60_000, tokensPerDay: 100_000 } });
    const first = await a.reserve(key, [50_000], now + 30_000);
    now += 120_000;
    const second = await b.reserve(key, [50_000], now + 30_000);
    now += 120_000;

    // Act
    const third = await a.reserve(key, [50_000], now + 60_000);
    await b.settle(first, 10_000);
    const afterGivenBack = await a.reserve(key, [30_000], now + 60_000);

    // Assess: the day's tokens come back at 100,000 a day; the minute's bucket was full throughout.
    expect([first.tokens, second.tokens]).toEqual([50_000, 50_000]);
    expect(third.tokens).toBe(0);
    expect(third.retryAt).toBeGreaterThan(now + 11 * 3_600_000);
    expect(afterGivenBack).toMatchObject({ tokens: 30_000, startAts: [now] });
  });

  it('pauses: nothing starts before the daily quota comes back', async () => {
    const [a, b] = workers();
    const key = newKey();
    await a.pauseUntil(key, now + 600_000);
    const paused = await b.reserve(key, [1_000], now + 60_000);
    expect(paused).toMatchObject({ tokens: 0, startAts: [], retryAt: now + 601_000 });
  });
});

describe('S3ObjectStore on fauxqs', () => {
  const store = () => new S3ObjectStore(cloud.clients.s3);

  it('reads byte ranges, streams from an offset and writes a large file as parts uploaded at once', async () => {
    // Prepare
    const location = { bucket: resources.bucket, key: 'work/large.txt' };
    const part = (megabytes: number) => Buffer.from(`${'z'.repeat(1_023)}\n`.repeat(megabytes * 1024));

    // Act
    const uploadId = await store().startMultipart(location, 'text/plain');
    const etags = await Promise.all(
      [8, 8, 4].map((megabytes, index) => store().uploadPart(location, uploadId, index + 1, part(megabytes))),
    );
    const parts = etags.map((etag, index) => ({ part: index + 1, etag }));
    await store().completeMultipart(location, uploadId, parts);
    // A caller that died right after completing tries again: S3 has forgotten the upload, the object stands.
    const completedAgain = await store()
      .completeMultipart(location, uploadId, parts)
      .then(() => 'completed');
    const unknownUpload = await store()
      .completeMultipart({ ...location, key: 'work/never-written.txt' }, uploadId, parts)
      .catch((error: Error) => error.name);
    const head = await store().head(location);
    const range = Buffer.from(await store().readRange(location, 1_020, 1_030)).toString();
    let streamed = 0;
    for await (const chunk of store().stream(location, 20 * 1024 * 1024 - 10)) streamed += chunk.length;
    // A reader that saved its place at the very end and was retried reads nothing more, and no error.
    let pastTheEnd = 0;
    for await (const chunk of store().stream(location, 20 * 1024 * 1024)) pastTheEnd += chunk.length;

    // Assess
    expect(head?.size).toBe(20 * 1024 * 1024);
    expect(head?.etag).toMatch(/-3$/);
    expect([completedAgain, unknownUpload]).toEqual(['completed', 'NoSuchUpload']);
    expect(range).toBe('zzz\nzzzzzz');
    expect(streamed).toBe(10);
    expect(pastTheEnd).toBe(0);
  });

  it('lists keys in order, from after a given key', async () => {
    // Prepare
    for (const name of ['a', 'b', 'c', 'd'])
      await store().put({ bucket: resources.bucket, key: `work/list/${name}` }, name, 'text/plain');

    // Act
    const after: string[] = [];
    for await (const key of store().list(resources.bucket, 'work/list/', 'work/list/b')) after.push(key);

    // Assess
    expect(after).toEqual(['work/list/c', 'work/list/d']);
  });

  it('answers undefined for objects that are not there', async () => {
    expect(await store().head({ bucket: resources.bucket, key: 'nope' })).toBeUndefined();
    expect(await store().read({ bucket: resources.bucket, key: 'nope' })).toBeUndefined();
  });

  it('writes user metadata with an object, and removes an object (again is no error)', async () => {
    // Prepare
    const location = { bucket: resources.bucket, key: 'message-batches/removed.json' };

    // Act
    await store().put(location, '{}', 'application/json', { tier: 'flex' });
    const written = await store().head(location);
    await store().remove(location);
    await store().remove(location);

    // Assess
    expect(written?.metadata).toMatchObject({ tier: 'flex' });
    expect(await store().head(location)).toBeUndefined();
  });

  it('reads an object as its job first saw it, and refuses to once it was uploaded again (If-Match)', async () => {
    // Prepare
    const location = { bucket: resources.bucket, key: 'inputs/pinned.jsonl' };
    await store().put(location, 'first upload\n', 'application/jsonl');
    const pinned = { ...location, etag: (await store().head(location))?.etag };
    const before = Buffer.from(await store().readRange(pinned, 0, 5)).toString();

    // Act
    await store().put(location, 'second upload\n', 'application/jsonl');
    const rangeAfter = await store()
      .readRange(pinned, 0, 5)
      .catch((error: Error) => error);
    const streamAfter = await (async () => {
      for await (const _chunk of store().stream(pinned, 0)) return 'read';
      return 'empty';
    })().catch((error: Error) => error);

    // Assess
    expect(before).toBe('first');
    expect(rangeAfter).toBeInstanceOf(InputChangedError);
    expect(streamAfter).toBeInstanceOf(InputChangedError);
    expect(Buffer.from(await store().readRange(location, 0, 6)).toString()).toBe('second');
  });
});
