import {
  BedrockClient,
  CreateModelInvocationJobCommand,
  type CreateModelInvocationJobCommandInput,
  GetModelInvocationJobCommand,
  type GetModelInvocationJobCommandOutput,
  ListModelInvocationJobsCommand,
  StopModelInvocationJobCommand,
} from '@aws-sdk/client-bedrock';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { BatchTurnaround } from '../../../local/bedrock/batch-jobs.ts';
import { S3BatchStorage } from '../../../local/bedrock/s3-batch-storage.ts';
import { type BedrockStandIn, startBedrockStandIn } from '../../../local/bedrock/stand-in.ts';
import { type FauxqsServer, startFauxqs } from '../../../local/cloud/fauxqs-server.ts';
import { bedrockClient, invoke, invokeBody, LOCAL_CREDENTIALS } from '../../support/bedrock-clients.ts';

const BUCKET = 'batch-jobs';
const MODEL_ID = 'global.anthropic.claude-opus-4-6-v1';
const ROLE_ARN = 'arn:aws:iam::123456789012:role/bedrock-batch-service';

let fauxqs: FauxqsServer;
let s3: S3Client;
beforeAll(async () => {
  fauxqs = await startFauxqs('us-west-2');
  s3 = new S3Client({
    region: 'us-west-2',
    endpoint: fauxqs.endpoint,
    forcePathStyle: true,
    credentials: LOCAL_CREDENTIALS,
  });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
afterAll(async () => {
  s3.destroy();
  await fauxqs.close();
});

/** A stand-in whose batch jobs use the local S3, on a quick turnaround unless told otherwise. */
async function standInWith(
  turnaround: Partial<BatchTurnaround> = {},
  faults: { recordErrorRate?: number; missingRecordRate?: number } = {},
) {
  return startBedrockStandIn({
    speed: 1,
    latency: { firstTokenMs: 0, perOutputTokenMs: 0 },
    batch: {
      storage: new S3BatchStorage(s3),
      turnaround: { validateMs: 5, scheduleMs: 5, perRecordMs: 0, ...turnaround },
      faults,
    },
  });
}

/** The official control-plane client, pointed at the stand-in. */
function controlPlane(standIn: BedrockStandIn): BedrockClient {
  return new BedrockClient({
    region: standIn.region,
    endpoint: standIn.endpoint,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
}

/** Uploads `count` records (each its own prompt, `mark` appended to the ones it picks) as batch JSONL. */
async function uploadInput(
  key: string,
  count: number,
  mark: (index: number) => string = () => '',
): Promise<Array<{ recordId: string; modelInput: Record<string, unknown> }>> {
  const records = Array.from({ length: count }, (_, index) => ({
    recordId: `r${String(index).padStart(5, '0')}`,
    modelInput: invokeBody({
      messages: [{ role: 'user', content: `Summarise item ${index}.${mark(index)}` }],
    }),
  }));
  await s3.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: key,
      Body: records.map((record) => JSON.stringify(record)).join('\n'),
    }),
  );
  return records;
}

function jobRequest(
  name: string,
  inputKey: string,
  overrides: Partial<CreateModelInvocationJobCommandInput> = {},
): CreateModelInvocationJobCommandInput {
  return {
    jobName: name,
    roleArn: ROLE_ARN,
    modelId: MODEL_ID,
    inputDataConfig: { s3InputDataConfig: { s3Uri: `s3://${BUCKET}/${inputKey}` } },
    outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://${BUCKET}/batch-output/${name}/` } },
    timeoutDurationInHours: 24,
    ...overrides,
  };
}

async function untilEnded(
  client: BedrockClient,
  jobArn: string,
): Promise<GetModelInvocationJobCommandOutput> {
  return vi.waitFor(
    async () => {
      const job = await client.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
      if (!['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'].includes(job.status ?? ''))
        throw new Error(`still ${job.status}`);
      return job;
    },
    { timeout: 20_000, interval: 20 },
  );
}

async function readText(uri: string): Promise<string | undefined> {
  const key = uri.replace(`s3://${BUCKET}/`, '');
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return await object.Body?.transformToString();
  } catch {
    return undefined;
  }
}

/** The job's output lines and manifest, under `<output>/<job id>/`. */
async function outputOf(job: GetModelInvocationJobCommandOutput, inputFile: string) {
  const folder = `${job.outputDataConfig?.s3OutputDataConfig?.s3Uri}${job.jobArn?.split('/').pop()}`;
  const text = await readText(`${folder}/${inputFile}.out`);
  const manifest = await readText(`${folder}/manifest.json.out`);
  return {
    lines: (text ?? '')
      .split('\n')
      .filter((line) => line !== '')
      .map(
        (line) =>
          JSON.parse(line) as {
            recordId: string;
            modelOutput?: { content: Array<{ text: string }> };
            error?: { errorCode: number; errorMessage: string };
          },
      ),
    manifest: manifest === undefined ? undefined : (JSON.parse(manifest) as Record<string, number>),
  };
}

describe('the stand-in batch inference control plane, with the official BedrockClient', () => {
  let standIn: BedrockStandIn;
  let client: BedrockClient;
  beforeAll(async () => {
    standIn = await standInWith();
    client = controlPlane(standIn);
  });
  afterAll(async () => {
    client.destroy();
    await standIn.close();
  });

  it('runs a job through its states and writes every record, shuffled, answered as InvokeModel answers it', async () => {
    // Prepare
    const records = await uploadInput('in/complete.jsonl', 120);

    // Act
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('complete', 'in/complete.jsonl')),
    );
    const job = await untilEnded(client, jobArn ?? '');
    const { lines, manifest } = await outputOf(job, 'complete.jsonl');

    // Assess
    expect(job).toMatchObject({
      status: 'Completed',
      jobName: 'complete',
      modelId: MODEL_ID,
      roleArn: ROLE_ARN,
      totalRecordCount: 120,
      processedRecordCount: 120,
      successRecordCount: 120,
      errorRecordCount: 0,
    });
    expect(job.submitTime).toBeInstanceOf(Date);
    expect(job.endTime?.getTime()).toBeGreaterThanOrEqual(job.submitTime?.getTime() ?? Infinity);
    expect(lines.map((line) => line.recordId).sort()).toEqual(records.map((record) => record.recordId));
    expect(lines.map((line) => line.recordId)).not.toEqual(records.map((record) => record.recordId));
    const onDemand = await invoke(bedrockClient(standIn), records[7]?.modelInput ?? {}, MODEL_ID);
    expect(lines.find((line) => line.recordId === 'r00007')?.modelOutput?.content[0]?.text).toBe(
      onDemand.content[0]?.text,
    );
    expect(manifest).toMatchObject({
      totalRecordCount: 120,
      processedRecordCount: 120,
      successRecordCount: 120,
      errorRecordCount: 0,
    });
    expect(manifest?.outputTokenCount).toBeGreaterThan(0);
  });

  it('starts one job for one client request token, however often it is sent', async () => {
    // Prepare
    await uploadInput('in/once.jsonl', 100);
    const request = jobRequest('once', 'in/once.jsonl', { clientRequestToken: 'job-once-part-1' });

    // Act
    const first = await client.send(new CreateModelInvocationJobCommand(request));
    const again = await client.send(new CreateModelInvocationJobCommand(request));
    const listed = await client.send(new ListModelInvocationJobsCommand({ nameContains: 'once' }));

    // Assess
    expect(again.jobArn).toBe(first.jobArn);
    expect(listed.invocationJobSummaries?.map((summary) => summary.jobArn)).toEqual([first.jobArn]);
    expect(standIn.batchJobs().filter((job) => job.clientRequestToken === 'job-once-part-1')).toHaveLength(1);
  });

  it('fails a job below the minimum record count, naming the minimum', async () => {
    // Prepare
    await uploadInput('in/small.jsonl', 99);

    // Act
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('small', 'in/small.jsonl')),
    );
    const job = await untilEnded(client, jobArn ?? '');

    // Assess
    expect(job.status).toBe('Failed');
    expect(job.message).toMatch(/less than the minimum of 100 records/);
  });

  it('answers injected record errors with error lines and leaves injected missing records out', async () => {
    // Prepare
    const mark = (index: number) =>
      index === 3 ? ' [[batch:error]]' : index === 5 ? ' [[batch:missing]]' : '';
    await uploadInput('in/faulty.jsonl', 100, mark);

    // Act
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('faulty', 'in/faulty.jsonl')),
    );
    const job = await untilEnded(client, jobArn ?? '');
    const { lines, manifest } = await outputOf(job, 'faulty.jsonl');

    // Assess
    expect(job.status).toBe('PartiallyCompleted');
    expect(lines).toHaveLength(99);
    expect(lines.find((line) => line.recordId === 'r00003')?.error).toEqual({
      errorCode: 500,
      errorMessage: expect.any(String),
    });
    expect(lines.some((line) => line.recordId === 'r00005')).toBe(false);
    expect(manifest).toMatchObject({ processedRecordCount: 99, successRecordCount: 98, errorRecordCount: 1 });
  });

  it('fails a job as a whole when asked, writing no output', async () => {
    // Prepare
    await uploadInput('in/doomed.jsonl', 100, (index) => (index === 0 ? ' [[batch:fail-job]]' : ''));

    // Act
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('doomed', 'in/doomed.jsonl')),
    );
    const job = await untilEnded(client, jobArn ?? '');

    // Assess
    expect(job.status).toBe('Failed');
    expect((await outputOf(job, 'doomed.jsonl')).manifest).toBeUndefined();
  });

  it('writes a model error line for a record Bedrock would refuse', async () => {
    // Prepare
    await uploadInput('in/refused.jsonl', 100);
    const refused = { recordId: 'bad', modelInput: invokeBody({ max_tokens: 0 }) };
    const text = await readText(`s3://${BUCKET}/in/refused.jsonl`);
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 'in/refused.jsonl',
        Body: `${text}\n${JSON.stringify(refused)}`,
      }),
    );

    // Act
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('refused', 'in/refused.jsonl')),
    );
    const job = await untilEnded(client, jobArn ?? '');
    const { lines } = await outputOf(job, 'refused.jsonl');

    // Assess
    expect(lines.find((line) => line.recordId === 'bad')?.error).toEqual({
      errorCode: 400,
      errorMessage: expect.stringMatching(/max_tokens/),
    });
  });

  it.each([
    ['a role that is not an IAM role ARN', { roleArn: 'bedrock-role' }, 'ValidationException'],
    ['a timeout under 24 hours', { timeoutDurationInHours: 12 }, 'ValidationException'],
    ['an unknown model', { modelId: 'anthropic.claude-9' }, 'ValidationException'],
  ])('refuses %s', async (_case, overrides, errorName) => {
    // Act
    const create = client.send(
      new CreateModelInvocationJobCommand(jobRequest('refused-request', 'in/x.jsonl', overrides)),
    );

    // Assess
    await expect(create).rejects.toMatchObject({ name: errorName });
  });

  it('answers ResourceNotFoundException for an unknown job and ConflictException for stopping an ended one', async () => {
    // Prepare
    await uploadInput('in/ended.jsonl', 100);
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('ended', 'in/ended.jsonl')),
    );
    await untilEnded(client, jobArn ?? '');

    // Act
    const unknown = client.send(new GetModelInvocationJobCommand({ jobIdentifier: 'nosuchjob000' }));
    const stopEnded = client.send(new StopModelInvocationJobCommand({ jobIdentifier: jobArn }));

    // Assess
    await expect(unknown).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(stopEnded).rejects.toMatchObject({ name: 'ConflictException' });
  });

  it('lists jobs by status, newest first', async () => {
    // Act
    const completed = await client.send(new ListModelInvocationJobsCommand({ statusEquals: 'Completed' }));

    // Assess
    const summaries = completed.invocationJobSummaries ?? [];
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries.every((summary) => summary.status === 'Completed')).toBe(true);
    const times = summaries.map((summary) => summary.submitTime?.getTime() ?? 0);
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });
});

describe('stopping, expiring and the jobs-in-flight quota', () => {
  it('stops a job in progress, keeping what it finished', async () => {
    // Prepare: 200 records at 50 ms each: ten seconds in progress, so a busy machine still stops it midway.
    const standIn = await standInWith({ perRecordMs: 50 });
    const client = controlPlane(standIn);
    await uploadInput('in/stopped.jsonl', 200);
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('stopped', 'in/stopped.jsonl')),
    );
    await vi.waitFor(
      async () => {
        const job = await client.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
        if (job.status !== 'InProgress') throw new Error(`still ${job.status}`);
      },
      { timeout: 10_000, interval: 5 },
    );

    // Act
    await client.send(new StopModelInvocationJobCommand({ jobIdentifier: jobArn }));
    const job = await untilEnded(client, jobArn ?? '');
    const { lines, manifest } = await outputOf(job, 'stopped.jsonl');

    // Assess
    expect(job.status).toBe('Stopped');
    expect(lines.length).toBeLessThan(200);
    expect(manifest?.processedRecordCount).toBe(lines.length);
    client.destroy();
    await standIn.close();
  });

  it('expires a job past its timeout, keeping what it finished', async () => {
    // Prepare: one hour is 2 ms here, so 24 hours pass in 48 ms; 200 records take 400 ms.
    const standIn = await standInWith({ perRecordMs: 2, hourMs: 2 });
    const client = controlPlane(standIn);
    await uploadInput('in/expired.jsonl', 200);

    // Act
    const { jobArn } = await client.send(
      new CreateModelInvocationJobCommand(jobRequest('expired', 'in/expired.jsonl')),
    );
    const job = await untilEnded(client, jobArn ?? '');

    // Assess
    expect(job.status).toBe('Expired');
    expect(job.processedRecordCount).toBeLessThan(200);
    client.destroy();
    await standIn.close();
  });

  it('refuses a job beyond the jobs in flight a region allows', async () => {
    // Prepare: jobs that stay in validation long enough to count.
    const standIn = await standInWith({ validateMs: 5_000 });
    const client = controlPlane(standIn);
    for (let index = 0; index < 10; index += 1)
      await client.send(
        new CreateModelInvocationJobCommand(jobRequest(`busy-${index}`, 'in/complete.jsonl')),
      );

    // Act
    const eleventh = client.send(
      new CreateModelInvocationJobCommand(jobRequest('busy-10', 'in/complete.jsonl')),
    );

    // Assess
    await expect(eleventh).rejects.toMatchObject({ name: 'ServiceQuotaExceededException' });
    client.destroy();
    await standIn.close();
  });
});
