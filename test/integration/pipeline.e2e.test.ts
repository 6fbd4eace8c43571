import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline/local-pipeline.ts';
import { outputLocations, resultSetLocation } from '../../shared/contract/storage-layout.ts';
import type { StoredResult } from '../../shared/core/model.ts';
import { resultSetBody } from '../../shared/messages/result-set.ts';
import { jobIdOf } from '../../shared/pipeline/job.ts';
import { MIXED_SAMPLE_RESULT_IDS, readFixture, s3KeyOf } from '../support/factories.ts';
import { untilEmpty } from '../support/queues.ts';

let cloud: LocalCloud;
let pipeline: LocalPipeline;

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  cloud = await startLocalCloud({ bedrock: { speed: 0 } });
  pipeline = await startLocalPipeline(cloud, {
    retryPolicy: { baseDelaySeconds: 1, maxDelaySeconds: 1, limitedAttempts: 3 },
    redeliverAfterSeconds: 5,
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  await cloud?.stop();
});

async function upload(key: string, body: string | Buffer, metadata: Record<string, string> = {}) {
  await cloud.clients.s3.send(
    new PutObjectCommand({ Bucket: pipeline.resources.bucket, Key: key, Body: body, Metadata: metadata }),
  );
}

async function text(key: string): Promise<string> {
  const object = await cloud.clients.s3.send(
    new GetObjectCommand({ Bucket: pipeline.resources.bucket, Key: key }),
  );
  return (await object.Body?.transformToString()) ?? '';
}

/** The output and manifest of the latest upload of `inputKey`. */
async function outputOf(inputKey: string) {
  const locations = outputLocations({
    jobId: jobIdOfUpload(inputKey),
    source: { bucket: pipeline.resources.bucket, key: inputKey },
  });
  const lines = (await text(locations.output.key))
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const manifest = JSON.parse(await text(locations.manifest.key)) as Record<string, unknown>;
  return { lines, manifest };
}

/** The job id of the latest upload of `key`, from its S3 event, as the enqueue function derives it. */
function jobIdOfUpload(key: string): string {
  const event = pipeline.shim.events.findLast(
    (candidate) => (candidate.detail as { object?: { key?: string } }).object?.key === key,
  );
  const etag = (event?.detail as { object?: { etag?: string } } | undefined)?.object?.etag;
  if (etag === undefined) throw new Error(`no S3 event for ${key}`);
  return jobIdOf(pipeline.resources.bucket, key, etag);
}

const plain = (id: string, prompt: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id, prompt, max_tokens: 64, ...extra });

describe('the pipeline on the local cloud', () => {
  it('runs the mixed sample file from upload to output, manifest and completion event', async () => {
    // Act
    await upload('inputs/mixed.jsonl', readFixture('prompts/mixed.jsonl'));
    const event = await pipeline.completion('inputs/mixed.jsonl');

    // Assess
    const { lines, manifest } = await outputOf('inputs/mixed.jsonl');
    expect(lines.map((line) => line.recordId ?? line.custom_id ?? line.id)).toEqual(MIXED_SAMPLE_RESULT_IDS);
    expect(lines[0]).toMatchObject({
      recordId: 'summary-001',
      modelInput: { max_tokens: 300 },
      modelOutput: { type: 'message', model: 'claude-opus-4-6' },
    });
    expect(lines[1]).toMatchObject({
      custom_id: 'ticket-42',
      result: { type: 'succeeded', message: { model: 'claude-haiku-4-5-20251001' } },
    });
    expect(lines[5]).toMatchObject({ id: 'line-7', status: 'errored', error: { code: 'NOT_AN_OBJECT' } });
    expect(manifest).toMatchObject({
      totalRecordCount: 11,
      processedRecordCount: 11,
      successRecordCount: 6,
      errorRecordCount: 5,
      status: 'completed',
      endpoint: 'global',
    });
    expect(manifest.inputTokenCount).toBeGreaterThan(0);
    expect(manifest.estimatedCostUsd).toBeGreaterThan(0);
    expect(event).toMatchObject({
      source: 'bedrock-batch-pipeline',
      'detail-type': 'Batch Job Completed',
      detail: {
        counts: { total: 11, succeeded: 6, errored: 5 },
        output: `s3://${pipeline.resources.bucket}/outputs/mixed.jsonl/${jobIdOfUpload('inputs/mixed.jsonl')}.jsonl.out`,
      },
    });
  });

  it('retries through throttles, gives up on a never-retry error and on a record out of attempts, and routes a long document to 1M', async () => {
    // Prepare
    const file = [
      plain('throttled', 'Hello [[fault:ThrottlingException x2]]'),
      plain('invalid', 'Hello [[fault:ValidationException]]'),
      plain('timing-out', 'Hello [[fault:ModelTimeoutException]]'),
      readFixture('prompts/long-document.jsonl').toString('utf8').trim(),
    ].join('\n');

    // Act
    await upload('inputs/faults.jsonl', file);
    await pipeline.completion('inputs/faults.jsonl');

    // Assess
    const { lines, manifest } = await outputOf('inputs/faults.jsonl');
    expect(lines[0]).toMatchObject({ id: 'throttled', status: 'succeeded' });
    expect(lines[1]).toMatchObject({
      id: 'invalid',
      status: 'errored',
      error: { code: 'ValidationException' },
    });
    expect(lines[2]).toMatchObject({
      id: 'timing-out',
      status: 'errored',
      error: {
        code: 'ModelTimeoutException',
        message: expect.stringMatching(/persisted through 3 attempts/),
      },
    });
    expect(lines[3]).toMatchObject({ recordId: 'maintenance-log-2025', modelOutput: { type: 'message' } });
    const longDocument = lines[3] as { modelOutput: { usage: { input_tokens: number } } };
    expect(longDocument.modelOutput.usage.input_tokens).toBeGreaterThan(200_000);
    expect(manifest).toMatchObject({ successRecordCount: 2, errorRecordCount: 2 });
    const responses = cloud.bedrock.state().responses;
    expect(responses.ThrottlingException).toBeGreaterThanOrEqual(2);
  });

  it('ignores a second upload of the same content (the same job) and counts a duplicated SQS delivery once', async () => {
    // Prepare
    const body = `${plain('a', 'First')}\n${plain('b', 'Second')}\n`;
    await upload('inputs/once.jsonl', body);
    const event = await pipeline.completion('inputs/once.jsonl');
    const jobId = String((event.detail as { jobId: string }).jobId);
    const message = {
      v: 1,
      jobId,
      recordId: 'a',
      lineNumber: 1,
      source: {
        bucket: pipeline.resources.bucket,
        key: 'inputs/once.jsonl',
        byteStart: 0,
        byteEnd: Buffer.byteLength(plain('a', 'First')),
      },
    };
    const before = cloud.bedrock.state().responses['200'] ?? 0;

    // Act
    await upload('inputs/once.jsonl', body);
    await pipeline.shim.idle();
    await cloud.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: pipeline.resources.recordQueueUrl,
        MessageBody: JSON.stringify(message),
      }),
    );
    await untilEmpty(cloud.clients.sqs, { queue: pipeline.resources.recordQueueUrl });

    // Assess
    const job = await pipeline.ledger.getJob(jobId);
    expect(job).toMatchObject({
      status: 'completed',
      doneRecords: 2,
      totals: expect.objectContaining({ successRecordCount: 2 }),
    });
    expect(cloud.bedrock.state().responses['200'] ?? 0).toBe(before);
  });
});

describe('failures between steps', () => {
  it('treats a duplicate S3 event as a no-op', async () => {
    // Prepare
    await upload('inputs/event-twice.jsonl', `${plain('a', 'Once')}\n`);
    await pipeline.completion('inputs/event-twice.jsonl');
    const calls = cloud.bedrock.state().responses['200'] ?? 0;
    const completions = pipeline.shim.events.filter(
      (event) => event['detail-type'] === 'Batch Job Completed',
    ).length;

    // Act: S3 delivers the same notification again.
    cloud.objectCreated.emit('created', {
      bucket: pipeline.resources.bucket,
      key: 'inputs/event-twice.jsonl',
      reason: 'PutObject',
    });
    await pipeline.shim.idle();
    await untilEmpty(cloud.clients.sqs, { queue: pipeline.resources.recordQueueUrl });

    // Assess
    expect(cloud.bedrock.state().responses['200'] ?? 0).toBe(calls);
    expect(
      pipeline.shim.events.filter((event) => event['detail-type'] === 'Batch Job Completed'),
    ).toHaveLength(completions);
  });

  it('adopts the result a worker stored in its result set before it died, without calling Bedrock again', async () => {
    // Prepare: workers paused, the file enqueued, and a result set stored for line 1 as if a worker had died
    // right after writing it (before the ledger update).
    await pipeline.workerPoller.stop();
    await upload('inputs/killed.jsonl', `${plain('survivor', 'Hello')}\n${plain('other', 'World')}\n`);
    await pipeline.shim.idle();
    const jobId = jobIdOfUpload('inputs/killed.jsonl');
    const stored: StoredResult = {
      subject: { recordId: 'survivor', lineNumber: 1, family: 'plain' },
      outcome: {
        status: 'succeeded',
        response: {
          type: 'message',
          content: [{ type: 'text', text: 'stored before the crash' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 3, output_tokens: 4 },
        },
      },
      completion: {
        lineNumber: 1,
        status: 'succeeded',
        family: 'plain',
        inputTokens: 3,
        outputTokens: 4,
        cacheCreationInputTokens: 0,
        cacheReadInputTokens: 0,
        costNanoUsd: 115_000,
        uncachedCostNanoUsd: 115_000,
      },
    };
    const source = { bucket: pipeline.resources.bucket, key: 'inputs/killed.jsonl' };
    const deadWorkersSet = resultSetLocation({ jobId, source }, 'dead-worker').key;
    await upload(deadWorkersSet, resultSetBody([stored]));
    // The dead worker held the record's lease for its attempt; the lease has run out since.
    await pipeline.ledger.leaseRecord(jobId, 1, 'dead-worker', 0, deadWorkersSet);
    const calls = cloud.bedrock.state().responses['200'] ?? 0;

    // Act
    pipeline.workerPoller.start();
    await pipeline.completion('inputs/killed.jsonl');

    // Assess
    const { lines, manifest } = await outputOf('inputs/killed.jsonl');
    expect(lines[0]).toMatchObject({ id: 'survivor', text: 'stored before the crash' });
    expect(lines[1]).toMatchObject({ id: 'other', status: 'succeeded' });
    expect(cloud.bedrock.state().responses['200'] ?? 0).toBe(calls + 1);
    expect(manifest).toMatchObject({ successRecordCount: 2 });
  });

  it('cancels a job: records not yet run become canceled results and the job ends canceled', async () => {
    // Prepare
    await pipeline.workerPoller.stop();
    await upload('inputs/cancel-me.jsonl', [plain('c1', 'One'), plain('c2', 'Two')].join('\n'));
    await pipeline.shim.idle();
    const jobId = jobIdOfUpload('inputs/cancel-me.jsonl');

    // Act
    const canceled = await pipeline.ledger.cancelJob(jobId);
    pipeline.workerPoller.start();
    const event = await pipeline.completion('inputs/cancel-me.jsonl');

    // Assess
    expect(canceled).toBe(true);
    const { lines, manifest } = await outputOf('inputs/cancel-me.jsonl');
    expect(lines.map((line) => line.status)).toEqual(['canceled', 'canceled']);
    expect(manifest).toMatchObject({ status: 'canceled', canceledRecordCount: 2, processedRecordCount: 0 });
    expect(event.detail).toMatchObject({ status: 'canceled' });
    expect(await pipeline.ledger.getJob(jobId)).toMatchObject({ status: 'canceled' });
  });
});

describe('a file larger than one enqueue invocation reads', () => {
  let small: LocalPipeline;
  beforeAll(async () => {
    small = await startLocalPipeline(cloud, {
      prefix: 'small-deadline',
      enqueueTimeoutMs: 1_000,
      enqueueStopBeforeDeadlineMs: 990,
      enqueueChunkLines: 5,
      redeliverAfterSeconds: 5,
    });
  }, 60_000);
  afterAll(() => small.stop());

  it('hands over between invocations and still produces every line once, in order', async () => {
    // Prepare
    const lines = Array.from({ length: 23 }, (_, index) => plain(`r${index}`, `Prompt number ${index}`));

    // Act
    await cloud.clients.s3.send(
      new PutObjectCommand({
        Bucket: small.resources.bucket,
        Key: 'inputs/many.jsonl',
        Body: lines.join('\n'),
      }),
    );
    const completed = await small.completion('inputs/many.jsonl');

    // Assess
    const object = await cloud.clients.s3.send(
      new GetObjectCommand({
        Bucket: small.resources.bucket,
        Key: s3KeyOf((completed.detail as { output?: unknown }).output),
      }),
    );
    const output = ((await object.Body?.transformToString()) ?? '')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; status: string });
    expect(output.map((line) => line.id)).toEqual(lines.map((_, index) => `r${index}`));
    expect(output.every((line) => line.status === 'succeeded')).toBe(true);
    const continuations = small.shim.events.filter(
      (event) => event['detail-type'] === 'Enqueue Continuation',
    );
    expect(continuations.length).toBeGreaterThanOrEqual(4);
  });
});

describe('a pipeline with a daily spending cap', () => {
  let capped: LocalPipeline;
  beforeAll(async () => {
    capped = await startLocalPipeline(cloud, { prefix: 'daily-cap', maxDailyCostUsd: 0.000001 });
  }, 60_000);
  afterAll(() => capped.stop());

  it('runs files until the day has cost what the cap allows, then stops each job with the reason', async () => {
    // Prepare: one record costs more than the cap.
    const put = (key: string, lines: string[]) =>
      cloud.clients.s3.send(
        new PutObjectCommand({ Bucket: capped.resources.bucket, Key: key, Body: lines.join('\n') }),
      );
    const manifestOf = async (completed: { detail: unknown }) => {
      const object = await cloud.clients.s3.send(
        new GetObjectCommand({
          Bucket: capped.resources.bucket,
          Key: s3KeyOf((completed.detail as { manifest?: unknown }).manifest),
        }),
      );
      return JSON.parse((await object.Body?.transformToString()) ?? 'null') as Record<string, unknown>;
    };

    // Act
    await put('inputs/first.jsonl', [plain('a', 'The first file')]);
    const first = await manifestOf(await capped.completion('inputs/first.jsonl'));
    await put('inputs/second.jsonl', [plain('b1', 'Too late'), plain('b2', 'Too late as well')]);
    const second = await manifestOf(await capped.completion('inputs/second.jsonl'));

    // Assess
    expect(first).toMatchObject({ status: 'completed', successRecordCount: 1 });
    expect(second).toMatchObject({
      status: 'canceled',
      canceledRecordCount: 2,
      reason: expect.stringMatching(
        /^the deployment's daily spending cap of \$0\.000001 was reached \(\$0\.\d+ spent on \d{4}-\d\d-\d\d, UTC\)$/,
      ),
    });
  });
});

describe('stopping the local pipeline while a file is read', () => {
  it('leaves the file where its reader saved it at once, instead of reading it to the end, and starts nothing new', async () => {
    // Prepare: 5,000 lines read 10 at a time.
    const stopping = await startLocalPipeline(cloud, { prefix: 'stopping', enqueueChunkLines: 10 });
    const lines = Array.from({ length: 5_000 }, (_, index) => plain(`r${index}`, `Prompt ${index}`));
    await cloud.clients.s3.send(
      new PutObjectCommand({
        Bucket: stopping.resources.bucket,
        Key: 'inputs/long.jsonl',
        Body: lines.join('\n'),
      }),
    );
    const jobId = jobIdOf(
      stopping.resources.bucket,
      'inputs/long.jsonl',
      (await untilReading(stopping, 'inputs/long.jsonl')).etag,
    );

    // Act
    await stopping.stop();
    const job = await stopping.ledger.getJob(jobId);

    // Assess: the continuation the reader asked for is on the bus, delivered to no one.
    expect(job).toMatchObject({ status: 'enqueuing' });
    expect(job?.recordsRead).toBeLessThan(5_000);
    const continuations = stopping.shim.events.filter(
      (event) => event['detail-type'] === 'Enqueue Continuation',
    );
    expect(continuations).toHaveLength(1);
    expect(stopping.shim.failedDeliveries).toEqual([]);
  });
});

/** Waits until the enqueue step has read some of the upload of `key`; its S3 event's object. */
async function untilReading(running: LocalPipeline, key: string): Promise<{ etag: string }> {
  for (;;) {
    const event = running.shim.events.find(
      (candidate) => (candidate.detail as { object?: { key?: string } }).object?.key === key,
    );
    const etag = (event?.detail as { object?: { etag?: string } } | undefined)?.object?.etag;
    if (etag !== undefined) {
      const job = await running.ledger.getJob(jobIdOf(running.resources.bucket, key, etag));
      if ((job?.recordsRead ?? 0) > 0) return { etag };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
