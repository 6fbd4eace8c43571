import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbTokenBudget } from '../../functions/adapters/dynamodb-budget.ts';
import { DynamoDbLedger } from '../../functions/adapters/dynamodb-ledger.ts';
import { S3ObjectStore } from '../../functions/adapters/s3-object-store.ts';
import { type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { type PipelineResources, provisionPipeline } from '../../local/pipeline/provision.ts';
import { newJobRecord } from '../../shared/pipeline/job.ts';
import type { JobRecord, Ledger } from '../../shared/pipeline/ports.ts';
import { MemoryLedger } from '../support/memory-ports.ts';

let cloud: LocalCloud;
let resources: PipelineResources;
beforeAll(async () => {
  cloud = await startLocalCloud({ bedrock: { speed: 0 } });
  resources = await provisionPipeline(cloud.clients, { prefix: 'adapters' });
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
});

// The same contract, against the in-memory ledger the unit tests use and the DynamoDB one on DynamoDB Local.
describe.each([
  ['MemoryLedger', (clock: () => number) => new MemoryLedger(clock) as Ledger],
  [
    'DynamoDbLedger',
    (clock: () => number) =>
      new DynamoDbLedger(cloud.clients.documents, resources.tableName, clock) as Ledger,
  ],
])('%s', (_name, makeLedger) => {
  let now = Date.parse('2026-11-25T10:00:00Z');
  const ledger = () => makeLedger(() => now);

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

  it('gives a record id to the first line that claims it, and to that line again', async () => {
    const subject = ledger();
    const { jobId } = newJob();
    expect(await subject.claimRecordId(jobId, 'r', 3)).toBeUndefined();
    expect(await subject.claimRecordId(jobId, 'r', 3)).toBeUndefined();
    expect(await subject.claimRecordId(jobId, 'r', 9)).toBe(3);
  });

  it('leases a record to one attempt at a time, counting attempts, until the lease runs out', async () => {
    const subject = ledger();
    const { jobId } = newJob();
    const first = await subject.leaseRecord(jobId, 1, 'a', 60);
    const whileHeld = await subject.leaseRecord(jobId, 1, 'b', 60);
    await subject.releaseRecord(jobId, 1, 'a');
    const afterRelease = await subject.leaseRecord(jobId, 1, 'b', 60);
    now += 61_000;
    const afterExpiry = await subject.leaseRecord(jobId, 1, 'c', 60);
    expect([first, whileHeld, afterRelease, afterExpiry]).toEqual([
      { kind: 'acquired', attempt: 1 },
      { kind: 'held' },
      { kind: 'acquired', attempt: 2 },
      { kind: 'acquired', attempt: 3 },
    ]);
  });

  it('counts a record once, adds its tokens and cost, and says done from then on', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.leaseRecord(job.jobId, 1, 'a', 60);
    expect([
      await subject.completeRecord(job.jobId, completion(1)),
      await subject.completeRecord(job.jobId, completion(1)),
    ]).toEqual([true, false]);
    await subject.completeRecord(job.jobId, completion(2, 'errored'));
    expect(await subject.isRecordDone(job.jobId, 1)).toBe(true);
    expect(await subject.leaseRecord(job.jobId, 1, 'b', 60)).toEqual({ kind: 'done' });
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
        costNanoUsd: 2_000,
      }),
    });
  });

  it('lets exactly one caller claim finalization, and only once every record is done', async () => {
    const subject = ledger();
    const job = newJob();
    await subject.createJob(job);
    await subject.completeRecord(job.jobId, completion(1));
    const beforeTotal = await subject.claimFinalization(job.jobId);
    const afterTotal = await subject.setTotal(job.jobId, 2);
    const notYet = await subject.claimFinalization(job.jobId);
    await subject.completeRecord(job.jobId, completion(2));
    const claims = await Promise.all([
      subject.claimFinalization(job.jobId),
      subject.claimFinalization(job.jobId),
    ]);
    expect(beforeTotal).toBe(false);
    expect(afterTotal).toMatchObject({ status: 'running', totalRecords: 2, doneRecords: 1 });
    expect(notYet).toBe(false);
    expect(claims.filter(Boolean)).toHaveLength(1);
  });

  it('saves read progress, cancels unfinished jobs only, and lists unfinished jobs', async () => {
    const subject = ledger();
    const running = newJob();
    const finished = newJob();
    await subject.createJob(running);
    await subject.createJob(finished);
    await subject.saveReadProgress(running.jobId, { readOffset: 120, readLine: 7, recordsRead: 6 });
    await subject.setTotal(finished.jobId, 0);
    await subject.claimFinalization(finished.jobId);
    await subject.finishJob(finished.jobId, 'completed', '2026-11-25T11:00:00.000Z');
    expect(await subject.cancelJob(running.jobId)).toBe(true);
    expect(await subject.cancelJob(finished.jobId)).toBe(false);
    expect(await subject.getJob(running.jobId)).toMatchObject({
      readOffset: 120,
      readLine: 7,
      recordsRead: 6,
      cancelRequested: true,
    });
    const active: string[] = [];
    for await (const job of subject.listActiveJobs()) active.push(job.jobId);
    expect(active).toContain(running.jobId);
    expect(active).not.toContain(finished.jobId);
    expect(await subject.getJob(finished.jobId)).toMatchObject({
      status: 'completed',
      finishedAt: '2026-11-25T11:00:00.000Z',
    });
  });
});

describe('DynamoDbLedger retention', () => {
  it('lets finished records and claimed ids expire by TTL', async () => {
    // Prepare
    const now = Date.parse('2026-11-25T10:00:00Z');
    const ledger = new DynamoDbLedger(cloud.clients.documents, resources.tableName, () => now, 7);
    const job = newJob();
    await ledger.createJob(job);

    // Act
    await ledger.claimRecordId(job.jobId, 'r1', 1);
    await ledger.completeRecord(job.jobId, completion(1));

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
    const ledger = new DynamoDbLedger(cloud.clients.documents, resources.tableName, () => now, 7);
    const finished = newJob();
    const running = newJob();
    await ledger.createJob(finished);
    await ledger.createJob(running);
    await ledger.setTotal(finished.jobId, 0);
    await ledger.claimFinalization(finished.jobId);

    // Act
    await ledger.finishJob(finished.jobId, 'completed', '2026-11-25T10:00:00.000Z');

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

describe('DynamoDbTokenBudget on DynamoDB Local', () => {
  it('shares one minute of quota between workers, and corrects reservations to the real use', async () => {
    // Prepare
    const now = Date.parse('2026-11-25T10:00:45Z');
    const budget = () =>
      new DynamoDbTokenBudget(
        cloud.clients.documents,
        resources.tableName,
        { tokensPerMinute: 1_000 },
        () => now,
      );
    const [workerA, workerB] = [budget(), budget()];

    // Act
    const first = await workerA.reserve('model-a', 600);
    const refused = await workerB.reserve('model-a', 600);
    if ('retryAfterSeconds' in first) throw new Error('the first reservation should fit');
    await workerA.settle(first, 200);
    const afterSettling = await workerB.reserve('model-a', 600);
    const otherModel = await workerB.reserve('model-b', 900);

    // Assess
    expect(refused).toEqual({ retryAfterSeconds: 15 });
    expect(afterSettling).toMatchObject({ tokens: 600 });
    expect(otherModel).toMatchObject({ tokens: 900 });
  });

  it('cuts its rate on Bedrock throttles and creeps back on successes (AIMD), never above the quota', async () => {
    // Prepare
    const budget = new DynamoDbTokenBudget(cloud.clients.documents, resources.tableName, {
      tokensPerMinute: 10_000,
      rateCacheMs: 0,
    });

    // Act
    await budget.recordThrottle('aimd');
    const afterOne = await budget.rateOf('aimd');
    await budget.recordThrottle('aimd');
    const afterTwo = await budget.rateOf('aimd');
    for (let index = 0; index < 40; index += 1) await budget.recordSuccess('aimd');
    const recovered = await budget.rateOf('aimd');

    // Assess
    expect([afterOne, afterTwo, recovered]).toEqual([7_000, 4_900, 10_000]);
  });
});

describe('S3ObjectStore on fauxqs', () => {
  const store = () => new S3ObjectStore(cloud.clients.s3);

  it('reads byte ranges, streams from an offset and writes large files as multipart uploads', async () => {
    // Prepare
    const location = { bucket: resources.bucket, key: 'work/large.txt' };
    const line = `${'z'.repeat(1_023)}\n`;

    // Act
    const upload = store().upload(location, 'text/plain');
    for (let index = 0; index < 20 * 1024; index += 1) await upload.write(line);
    await upload.complete();
    const head = await store().head(location);
    const range = Buffer.from(await store().readRange(location, 1_020, 1_030)).toString();
    let streamed = 0;
    for await (const chunk of store().stream(location, 20 * 1024 * 1024 - 10)) streamed += chunk.length;

    // Assess
    expect(head?.size).toBe(20 * 1024 * 1024);
    expect(head?.etag).toMatch(/-3$/);
    expect(range).toBe('zzz\nzzzzzz');
    expect(streamed).toBe(10);
  });

  it('answers undefined for objects that are not there', async () => {
    expect(await store().head({ bucket: resources.bucket, key: 'nope' })).toBeUndefined();
    expect(await store().read({ bucket: resources.bucket, key: 'nope' })).toBeUndefined();
  });
});
