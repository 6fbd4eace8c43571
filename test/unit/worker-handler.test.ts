import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { observability } from '../../functions/observability.ts';
import { createWorkerHandler } from '../../functions/worker/handler.ts';
import { createLambdaContext } from '../../local/glue/lambda-context.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { textResponse } from '../support/memory-ports.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

function sqsRecord(body: string, messageId: string): SQSRecord {
  return {
    messageId,
    receiptHandle: `handle-${messageId}`,
    body,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-west-2:000000000000:records',
    awsRegion: 'us-west-2',
  };
}

/** The EMF documents Powertools printed, parsed. */
function emfDocuments(calls: readonly unknown[][]): Array<Record<string, unknown>> {
  return calls
    .map(([chunk]) => String(chunk))
    .flatMap((text) => text.split('\n'))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

afterEach(() => vi.restoreAllMocks());

describe('the worker handler', () => {
  it('reports retries and unhandled messages as batch item failures and emits metrics per model', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: (_, body) => {
        if (JSON.stringify(body).includes('throttle me')) {
          throw Object.assign(new Error('slow down'), {
            name: 'ThrottlingException',
            $metadata: { httpStatusCode: 429 },
          });
        }
        return textResponse('fine', { input_tokens: 12, output_tokens: 7 });
      },
    });
    pipeline.store.putObject(
      BUCKET,
      'inputs/h.jsonl',
      '{"id": "ok", "prompt": "hi"}\n{"id": "busy", "prompt": "throttle me"}\n',
    );
    await startJob(objectCreated('inputs/h.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
    const [ok, busy] = pipeline.queue.sent.splice(0);
    const handler = createWorkerHandler({
      ...observability('worker'),
      ports: pipeline.ports,
      settings: {
        policy: pipeline.workerSettings.policy,
        outputBurndown: 5,
        leaseSeconds: 60,
        random: () => 0.5,
      },
    });
    const event: SQSEvent = {
      Records: [
        sqsRecord(JSON.stringify(ok), 'm-ok'),
        sqsRecord(JSON.stringify(busy), 'm-busy'),
        sqsRecord('not json', 'm-bad'),
      ],
    };
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act
    const response = await handler(
      event,
      createLambdaContext({ functionName: 'worker', timeoutMs: 30_000 }) as Context,
    );

    // Assess
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: 'm-busy' }, { itemIdentifier: 'm-bad' }],
    });
    expect(pipeline.queue.visibilityChanges).toEqual([{ receiptHandle: 'handle-m-busy', seconds: 1 }]);
    const documents = emfDocuments(write.mock.calls);
    const counted = Object.assign({}, ...documents.filter((document) => !('model' in document)));
    expect(counted).toMatchObject({
      RecordsSucceeded: 1,
      RecordsRetried: 1,
      BedrockThrottles: 1,
      RecordsUnhandled: 1,
    });
    expect(documents).toContainEqual(
      expect.objectContaining({
        model: 'global.anthropic.claude-opus-4-6-v1',
        InputTokens: 12,
        OutputTokens: 7,
        EstimatedCostUsd: 0.000235,
      }),
    );
    expect(write.mock.calls.map(([chunk]) => String(chunk)).join('')).not.toContain('throttle me');
  });
});
