import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { observability } from '../../functions/observability.ts';
import { createWorkerHandler } from '../../functions/worker/handler.ts';
import { createLambdaContext } from '../../local/glue/lambda-context.ts';
import { NO_RETRIES } from '../../shared/core/retries.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { awsError } from '../support/factories.ts';
import { MemoryBudget, textResponse } from '../support/memory-ports.ts';
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

/** What the functions logged to stderr (Powertools writes warnings and errors there), parsed. */
function loggedProblems(
  calls: readonly unknown[][],
): Array<{ level: string; message: string; messageId?: string }> {
  return calls
    .map(([chunk]) => String(chunk))
    .flatMap((text) => text.split('\n'))
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: string; message: string; messageId?: string });
}

/** The handler on the harness's ports and settings, as the Lambda entry builds it. */
function workerHandler(pipeline: ReturnType<typeof pipelineHarness>) {
  const { owner: _perInvocation, ...settings } = pipeline.workerSettings;
  return createWorkerHandler({ ...observability('worker'), ports: pipeline.ports, settings });
}

const context = () => createLambdaContext({ functionName: 'worker', timeoutMs: 30_000 }) as Context;

// Expected errors are asserted by the tests that cause them, not printed.
let stderr: ReturnType<typeof vi.spyOn>;
beforeEach(() => {
  stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

describe('the worker handler', () => {
  it('reports retries and unhandled messages as batch item failures and emits metrics per model', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: (_, body) => {
        if (JSON.stringify(body).includes('throttle me')) {
          throw awsError('ThrottlingException', 429, 'slow down');
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
    const handler = workerHandler(pipeline);
    const event: SQSEvent = {
      Records: [
        sqsRecord(JSON.stringify(ok), 'm-ok'),
        sqsRecord(JSON.stringify(busy), 'm-busy'),
        sqsRecord('not json', 'm-bad'),
      ],
    };
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act
    const response = await handler(event, context());

    // Assess
    expect(response.batchItemFailures.map(({ itemIdentifier }) => itemIdentifier).sort()).toEqual([
      'm-bad',
      'm-busy',
    ]);
    // Throttled, made again in the invocation, throttled again: back through the queue, its second attempt's backoff.
    expect(pipeline.queue.visibilityChanges).toEqual([{ receiptHandle: 'handle-m-busy', seconds: 2 }]);
    const documents = emfDocuments(write.mock.calls);
    const counted = Object.assign({}, ...documents.filter((document) => !('model' in document)));
    expect(counted).toMatchObject({
      RecordsReceived: 3,
      BedrockCalls: [1, 1, 1],
      RecordsSucceeded: 1,
      RecordsRetried: [1, 1],
      BedrockThrottles: [1, 1],
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
    expect(documents).toContainEqual(
      expect.objectContaining({
        pool: 'us-west-2#global.anthropic.claude-opus-4-6-v1',
        PoolRecords: 1,
        PoolInputTokens: 12,
        PoolOutputTokens: 7,
        PoolThrottles: 2,
      }),
    );
    expect(write.mock.calls.map(([chunk]) => String(chunk)).join('')).not.toContain('throttle me');
    expect(loggedProblems(stderr.mock.calls)).toEqual([
      expect.objectContaining({
        level: 'ERROR',
        message: 'record could not be handled; it returns through the queue',
        messageId: 'm-bad',
      }),
    ]);
  });

  it("emits each model's prompt-cache hits, misses and saving", async () => {
    // Prepare: one call writes 6,000 tokens to the cache, the other reads them (Opus: input $5, write $6.25,
    // read $0.5 a million).
    let calls = 0;
    const pipeline = pipelineHarness({
      answer: () => {
        calls += 1;
        return textResponse('fine', {
          input_tokens: 12,
          output_tokens: 7,
          ...(calls === 1 ? { cache_creation_input_tokens: 6_000 } : { cache_read_input_tokens: 6_000 }),
        });
      },
    });
    const messages = await queuedRecords(pipeline, ['writer', 'reader']);
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act
    await workerHandler(pipeline)(eventOf(messages), context());

    // Assess: the saving is the read's 6,000 x $4.5 less the write's 6,000 x $1.25, a million tokens each.
    expect(emfDocuments(write.mock.calls)).toContainEqual(
      expect.objectContaining({
        model: 'global.anthropic.claude-opus-4-6-v1',
        CacheHitRecords: 1,
        CacheMissRecords: 1,
        CacheSavingUsd: 0.0195,
      }),
    );
  });

  it('sends records waiting for quota back with a delay and their wait count, and deletes the originals', async () => {
    // Prepare: 3,500 tokens a minute; before any answer, each record is expected to cost the most Bedrock
    // may charge for it: its input and max_tokens 256 x 5, 1,289 tokens.
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const pipeline = pipelineHarness({
      clock,
      budget: new MemoryBudget({ tokensPerMinute: 3_500 }, () => clock.now),
    });
    const messages = await queuedRecords(pipeline, ['a', 'b', 'c', 'd', 'e']);
    const event = eventOf(messages);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act: the invocation may wait 12.5 s ((30 s - 5 s wrap-up) / 2) for tokens.
    const response = await workerHandler(pipeline)(event, context());

    // Assess: two records run at once and a third on what they freed; the last two go back to wait.
    expect(response).toEqual({ batchItemFailures: [] });
    expect(pipeline.model.calls).toHaveLength(3);
    expect(pipeline.queue.delayed.map(({ message }) => [message.recordId, message.waits])).toEqual([
      ['d', 1],
      ['e', 1],
    ]);
    expect(pipeline.queue.delayed.every(({ delaySeconds }) => delaySeconds >= 1 && delaySeconds <= 900)).toBe(
      true,
    );
    expect(pipeline.queue.visibilityChanges).toEqual([]);
    expect((await pipeline.ledger.getJob(messages[0]?.jobId ?? ''))?.retries).toEqual({
      ...NO_RETRIES,
      sentBackToWait: 2,
      receives: 5,
      bedrockCalls: 3,
    });
  });

  it('returns records waiting for quota through their visibility when they cannot be sent again', async () => {
    // Prepare: room for one record; the second waits, and the queue refuses the send.
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const pipeline = pipelineHarness({
      clock,
      budget: new MemoryBudget({ tokensPerMinute: 300 }, () => clock.now),
    });
    const messages = await queuedRecords(pipeline, ['a', 'b']);
    vi.spyOn(pipeline.queue, 'send').mockRejectedValueOnce(awsError('ServiceUnavailable', 503, 'busy'));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act
    const response = await workerHandler(pipeline)(eventOf(messages), context());

    // Assess
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: 'm-1' }] });
    expect(pipeline.queue.visibilityChanges).toEqual([
      { receiptHandle: 'handle-m-1', seconds: expect.any(Number) },
    ]);
    expect(pipeline.queue.visibilityChanges[0]?.seconds).toBeGreaterThanOrEqual(1);
    expect(loggedProblems(stderr.mock.calls)).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: 'records waiting for quota could not be sent again; they return through the queue',
      }),
    ]);
  });

  it('answers a batch that all goes back for a retry, without failing the invocation', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: () => {
        throw awsError('ThrottlingException', 429, 'slow down');
      },
    });
    const messages = await queuedRecords(pipeline, ['a', 'b', 'c']);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act
    const response = await workerHandler(pipeline)(eventOf(messages), context());

    // Assess
    expect(response.batchItemFailures.map(({ itemIdentifier }) => itemIdentifier).sort()).toEqual([
      'm-0',
      'm-1',
      'm-2',
    ]);
    expect(pipeline.queue.visibilityChanges).toHaveLength(3);
  });

  it('answers invocations running at once each with its own batch item failures', async () => {
    // Prepare: one handler, as a poller with several invocations in flight uses it.
    const pipeline = pipelineHarness();
    const messages = await queuedRecords(pipeline, ['a', 'b']);
    const handler = workerHandler(pipeline);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const first: SQSEvent = {
      Records: [sqsRecord(JSON.stringify(messages[0]), 'first-ok'), sqsRecord('{', 'first-bad')],
    };
    const second: SQSEvent = {
      Records: [sqsRecord(JSON.stringify(messages[1]), 'second-ok'), sqsRecord('[', 'second-bad')],
    };

    // Act
    const [one, two] = await Promise.all([handler(first, context()), handler(second, context())]);

    // Assess
    expect(one).toEqual({ batchItemFailures: [{ itemIdentifier: 'first-bad' }] });
    expect(two).toEqual({ batchItemFailures: [{ itemIdentifier: 'second-bad' }] });
    expect(
      loggedProblems(stderr.mock.calls)
        .filter((line) => line.level === 'ERROR')
        .map((line) => line.messageId)
        .sort(),
    ).toEqual(['first-bad', 'second-bad']);
  });

  it('fails the invocation when the batch cannot be decided, after counting what it was given', async () => {
    // Prepare: the shared budget's table is unreachable.
    const pipeline = pipelineHarness();
    const messages = await queuedRecords(pipeline, ['a', 'b']);
    vi.spyOn(pipeline.budget, 'reserve').mockRejectedValue(awsError('InternalServerError', 500, 'down'));
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);

    // Act
    const invocation = workerHandler(pipeline)(eventOf(messages), context());

    // Assess: Lambda counts an error and the whole batch returns through the queue.
    await expect(invocation).rejects.toThrow('down');
    expect(Object.assign({}, ...emfDocuments(write.mock.calls))).toMatchObject({ RecordsReceived: 2 });
  });
});

/** Starts a job of one record per id and takes its queued messages. */
async function queuedRecords(pipeline: ReturnType<typeof pipelineHarness>, ids: readonly string[]) {
  pipeline.store.putObject(
    BUCKET,
    'inputs/q.jsonl',
    ids.map((id) => `{"id": "${id}", "prompt": "hi"}`).join('\n'),
  );
  await startJob(objectCreated('inputs/q.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
  return pipeline.queue.sent.splice(0);
}

/** The SQS event that delivers these messages, as m-0, m-1, ... */
function eventOf(messages: readonly unknown[]): SQSEvent {
  return { Records: messages.map((message, index) => sqsRecord(JSON.stringify(message), `m-${index}`)) };
}
