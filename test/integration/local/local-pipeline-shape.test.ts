import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineSettings } from '../../../infra/props.ts';
import { type LocalCloud, startLocalCloud } from '../../../local/cloud/local-cloud.ts';
import { type LocalPipeline, startLocalPipeline } from '../../../local/pipeline/local-pipeline.ts';
import { localTypicalRecord } from '../../../local/run-job.ts';

const TOKENS_PER_MINUTE = 100_000;

let cloud: LocalCloud;
let pipeline: LocalPipeline;
beforeAll(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  cloud = await startLocalCloud({ bedrock: { speed: 1 } });
  // As `run` and `local up` start it at speed 1.
  pipeline = await startLocalPipeline(cloud, {
    tokensPerMinute: TOKENS_PER_MINUTE,
    typicalRecord: localTypicalRecord({ speed: 1 }),
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  await cloud?.stop();
});

async function visibilityOf(queueUrl: string): Promise<number> {
  const { Attributes } = await cloud.clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['VisibilityTimeout'] }),
  );
  return Number(Attributes?.VisibilityTimeout);
}

describe('a local pipeline as run and local up start it', () => {
  it('has the worker the stack derives for the same quota', () => {
    const stack = pipelineSettings({ bedrockRegion: 'us-west-2', tokensPerMinute: TOKENS_PER_MINUTE });
    expect(pipeline.worker).toEqual(stack.worker);
  });

  it('hides records six times the worker timeout, and jobs six times the finalizer timeout', async () => {
    expect(await visibilityOf(pipeline.resources.recordQueueUrl)).toBe(6 * pipeline.worker.timeoutSeconds);
    expect(await visibilityOf(pipeline.resources.finalizeQueueUrl)).toBe(6 * 900);
  });
});
