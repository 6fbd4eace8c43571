import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalCloud, startLocalCloud } from '../../local/cloud/local-cloud.ts';
import { RequestMeter } from '../../local/cloud/request-meter.ts';
import { type LocalPipeline, startLocalPipeline } from '../../local/pipeline/local-pipeline.ts';
import { s3KeyOf } from '../support/factories.ts';
import { messagesIn } from '../support/queues.ts';

/** 6,000 tokens a minute for 80 records charged about 90 tokens each: the last quarter of them wait. */
const TOKENS_PER_MINUTE = 6_000;
const RECORDS = 80;

let cloud: LocalCloud;
let pipeline: LocalPipeline;
const meter = new RequestMeter();

beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  cloud = await startLocalCloud({ bedrock: { speed: 0.1, quota: { tokensPerMinute: TOKENS_PER_MINUTE } } });
  meter.attach(cloud.clients);
  pipeline = await startLocalPipeline(cloud, {
    prefix: 'tight',
    tokensPerMinute: TOKENS_PER_MINUTE,
    worker: { concurrency: 2, timeoutSeconds: 20 },
    defaults: { model: 'haiku-4.5', defaultMaxTokens: 16 },
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  await cloud?.stop();
});

describe('a file under a quota that makes records wait', () => {
  it('runs every record exactly once, none to the DLQ, none received more than twice, none throttled', async () => {
    // Prepare
    const ids = Array.from({ length: RECORDS }, (_, index) => `rec-${String(index).padStart(3, '0')}`);
    const body = ids
      .map((id) => JSON.stringify({ id, prompt: `Summarise record ${id} for the report.` }))
      .join('\n');

    // Act
    await cloud.clients.s3.send(
      new PutObjectCommand({ Bucket: pipeline.resources.bucket, Key: 'inputs/tight.jsonl', Body: body }),
    );
    const event = await pipeline.completion('inputs/tight.jsonl', 120_000);

    // Assess
    const output = await cloud.clients.s3.send(
      new GetObjectCommand({
        Bucket: pipeline.resources.bucket,
        Key: s3KeyOf((event.detail as { output?: unknown }).output),
      }),
    );
    const lines = ((await output.Body?.transformToString()) ?? '')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; status: string });
    expect(event).toMatchObject({ detail: { counts: { total: RECORDS, succeeded: RECORDS } } });
    expect(lines.map((line) => [line.id, line.status])).toEqual(ids.map((id) => [id, 'succeeded']));
    expect(await messagesIn(cloud.clients.sqs, pipeline.resources.recordDlqUrl)).toBe(0);
    expect(await messagesIn(cloud.clients.sqs, pipeline.resources.recordQueueUrl)).toBe(0);
    const receives = [...meter.receivesByRecord.values()];
    expect(receives).toHaveLength(RECORDS);
    expect(Math.max(...receives)).toBeLessThanOrEqual(2);
    const [quota] = cloud.bedrock.state().quotas;
    expect(quota).toMatchObject({ requests: RECORDS, throttled: 0 });
    // The quota was tight: the budget made records wait.
    const job = await pipeline.ledger.getJob((event.detail as { jobId: string }).jobId);
    expect(job?.retries.budgetWaits).toBeGreaterThan(0);
    // The job's own counters agree with what the queue and Bedrock saw.
    expect(job?.retries).toMatchObject({
      receives: receives.reduce((sum, count) => sum + count, 0),
      bedrockCalls: RECORDS,
      bedrockThrottles: 0,
    });
  });
});
