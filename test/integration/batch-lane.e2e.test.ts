import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BedrockBatchJobs } from '../../functions/adapters/bedrock-batch-jobs.ts';
import { type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import {
  LOCAL_BATCH_ROLE_ARN,
  type LocalPipeline,
  startLocalPipeline,
} from '../../local/pipeline/local-pipeline.ts';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { jobIdOf } from '../../shared/pipeline/job.ts';

let cloud: LocalCloud;
let pipeline: LocalPipeline;

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  cloud = await startLocalCloud({
    bedrock: {
      speed: 1,
      latency: { firstTokenMs: 0, perOutputTokenMs: 0 },
      // A batch job of 150 records takes 1.5 s in progress: long enough to stop one at a 1-second deadline.
      batch: { turnaround: { validateMs: 20, scheduleMs: 20, perRecordMs: 10 } },
    },
  });
  pipeline = await startLocalPipeline(cloud, {
    retryPolicy: { baseDelaySeconds: 1, maxDelaySeconds: 1 },
    redeliverAfterSeconds: 5,
    // No scheduled sweep: Bedrock's state change events collect the parts, deadline alarms stop late jobs.
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  await cloud?.stop();
});

/** 150 records in the three input forms, in turn; `mark` adds a stand-in marker to the prompts it picks. */
function mixedFile(mark: (index: number) => string = () => ''): string {
  return Array.from({ length: 150 }, (_, index) => {
    const prompt = `Summarise item ${index}.${mark(index)}`;
    const messages = [{ role: 'user', content: prompt }];
    if (index % 3 === 0) return JSON.stringify({ id: `plain-${index}`, prompt, max_tokens: 64 });
    if (index % 3 === 1)
      return JSON.stringify({ custom_id: `anthropic-${index}`, params: { max_tokens: 64, messages } });
    return JSON.stringify({
      recordId: `bedrock-${index}`,
      modelInput: { anthropic_version: 'bedrock-2023-05-31', max_tokens: 64, messages },
    });
  }).join('\n');
}

async function upload(key: string, body: string, metadata: Record<string, string> = {}): Promise<string> {
  const put = await cloud.clients.s3.send(
    new PutObjectCommand({ Bucket: pipeline.resources.bucket, Key: key, Body: body, Metadata: metadata }),
  );
  return jobIdOf(pipeline.resources.bucket, key, put.VersionId ?? (put.ETag ?? '').replaceAll('"', ''));
}

async function text(key: string): Promise<string> {
  const object = await cloud.clients.s3.send(
    new GetObjectCommand({ Bucket: pipeline.resources.bucket, Key: key }),
  );
  return (await object.Body?.transformToString()) ?? '';
}

/** Runs a file to its completion event; its output lines as ids, families and texts, and its manifest. */
async function runFile(key: string, body: string, metadata: Record<string, string> = {}) {
  const jobId = await upload(key, body, metadata);
  await pipeline.completion(key, 60_000);
  const locations = outputLocations({ jobId, source: { bucket: pipeline.resources.bucket, key } });
  const lines = (await text(locations.output.key))
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    jobId,
    seen: lines.map(asSeen),
    manifest: JSON.parse(await text(locations.manifest.key)) as Record<string, unknown>,
  };
}

/** What a user reads in a line: its id, its form and the text of the answer (or the error). */
function asSeen(line: Record<string, unknown>) {
  const answer = (line.modelOutput ?? (line.result as { message?: unknown })?.message ?? line.response) as
    | { content?: Array<{ text?: string }> }
    | undefined;
  return {
    id: line.recordId ?? line.custom_id ?? line.id,
    form: 'recordId' in line ? 'bedrock' : 'custom_id' in line ? 'anthropic' : 'plain',
    text:
      answer?.content?.[0]?.text ?? JSON.stringify(line.error ?? (line.result as { error?: unknown })?.error),
  };
}

const batchJobsOf = (jobId: string) => cloud.bedrock.batchJobs().filter((job) => job.jobName.includes(jobId));

describe('the batch lane on the local cloud', () => {
  it('gives the output an on-demand run gives, though its batch job errs on one record and loses another', async () => {
    // Prepare
    const mark = (index: number) =>
      index === 10 ? ' [[batch:error]]' : index === 20 ? ' [[batch:missing]]' : '';
    const onDemand = await runFile('inputs/on-demand.jsonl', mixedFile(mark));

    // Act
    const batch = await runFile('inputs/batch.jsonl', mixedFile(mark), { lane: 'batch' });

    // Assess
    expect(batch.seen).toEqual(onDemand.seen);
    expect(batchJobsOf(batch.jobId).map((job) => job.status)).toEqual(['PartiallyCompleted']);
    expect(batch.manifest).toMatchObject({ totalRecordCount: 150, successRecordCount: 150, lane: 'batch' });
    expect(batch.manifest.lanes).toMatchObject({ batch: { records: 148 }, onDemand: { records: 2 } });
    expect(Number(batch.manifest.estimatedCostUsd)).toBeLessThan(
      Number(onDemand.manifest.estimatedCostUsd) * 0.6,
    );
  });

  it('runs every record on demand when its batch job fails as a whole, counting each once', async () => {
    // Prepare
    const doomed = mixedFile((index) => (index === 0 ? ' [[batch:fail-job]]' : ''));
    const onDemand = await runFile('inputs/doomed-on-demand.jsonl', doomed);

    // Act
    const failed = await runFile('inputs/doomed.jsonl', doomed, { lane: 'batch' });

    // Assess
    expect(failed.seen).toEqual(onDemand.seen);
    expect(batchJobsOf(failed.jobId).map((job) => job.status)).toEqual(['Failed']);
    expect(failed.manifest).toMatchObject({ totalRecordCount: 150, successRecordCount: 150 });
    expect(failed.manifest.lanes).toEqual({ onDemand: expect.objectContaining({ records: 150 }) });
  });

  it('stops a batch job at the deadline, woken by its alarm, and finishes its records on demand', async () => {
    // Act
    const late = await runFile('inputs/late.jsonl', mixedFile(), { lane: 'batch', deadline: '1s' });

    // Assess
    expect(batchJobsOf(late.jobId).map((job) => job.status)).toEqual(['Stopped']);
    expect(late.manifest).toMatchObject({ totalRecordCount: 150, successRecordCount: 150 });
    const lanes = late.manifest.lanes as { batch?: { records: number }; onDemand: { records: number } };
    expect((lanes.batch?.records ?? 0) + lanes.onDemand.records).toBe(150);
    expect(lanes.onDemand.records).toBeGreaterThan(0);
  });

  it('runs a file under the batch minimum on demand under auto, with no batch job', async () => {
    // Act
    const small = await runFile('inputs/small.jsonl', mixedFile().split('\n').slice(0, 60).join('\n'), {
      lane: 'auto',
    });

    // Assess
    expect(batchJobsOf(small.jobId)).toEqual([]);
    expect(small.manifest).toMatchObject({ totalRecordCount: 60, successRecordCount: 60, lane: 'on-demand' });
  });

  it('starts no second batch job for a duplicate S3 event or a retried submit', async () => {
    // Prepare
    const key = 'inputs/once.jsonl';
    const first = await runFile(key, mixedFile(), { lane: 'batch' });
    const [job] = batchJobsOf(first.jobId);
    const uploaded = pipeline.shim.events.findLast(
      (event) => (event.detail as { object?: { key?: string } }).object?.key === key,
    );

    // Act
    pipeline.shim.putEvent({ source: 'aws.s3', detailType: 'Object Created', detail: uploaded?.detail });
    await pipeline.shim.idle();
    const resubmitted = await new BedrockBatchJobs(cloud.clients.bedrockJobs, LOCAL_BATCH_ROLE_ARN).submit({
      jobName: job?.jobName ?? '',
      modelId: job?.modelId ?? '',
      inputUri: job?.inputDataConfig.s3InputDataConfig.s3Uri ?? '',
      outputUri: job?.outputDataConfig.s3OutputDataConfig.s3Uri ?? '',
      timeoutHours: 24,
      clientRequestToken: job?.clientRequestToken ?? '',
    });

    // Assess
    expect(resubmitted).toBe(job?.jobArn);
    expect(batchJobsOf(first.jobId)).toHaveLength(1);
  });
});
