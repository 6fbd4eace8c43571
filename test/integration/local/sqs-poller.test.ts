import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { redrive } from '../../../cli/redrive.ts';
import { type AwsClients, awsClients } from '../../../functions/adapters/clients.ts';
import { type FauxqsServer, startFauxqs } from '../../../local/cloud/fauxqs-server.ts';
import { LOCAL_CREDENTIALS } from '../../../local/cloud/local-cloud.ts';
import { type SqsHandler, SqsPoller } from '../../../local/glue/sqs-poller.ts';
import { messagesIn } from '../../support/queues.ts';

const region = 'us-west-2';
let fauxqs: FauxqsServer;
let sqs: AwsClients['sqs'];

beforeAll(async () => {
  fauxqs = await startFauxqs(region);
  const endpoint = fauxqs.endpoint;
  sqs = awsClients({
    region,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { s3: endpoint, sqs: endpoint, dynamodb: endpoint, bedrock: endpoint },
  }).sqs;
});
afterAll(async () => {
  sqs.destroy();
  await fauxqs.close();
});

let queueCount = 0;
/** A queue with a DLQ after `maxReceiveCount` receives and a 1-second visibility timeout. */
async function queueWithDlq(maxReceiveCount = 3) {
  queueCount += 1;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `dlq-${queueCount}` }));
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `records-${queueCount}`,
      Attributes: {
        VisibilityTimeout: '1',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  return { queueUrl: queue.QueueUrl ?? '', queueArn: queueArn ?? '', dlqUrl: dlq.QueueUrl ?? '' };
}

async function send(queueUrl: string, bodies: string[]) {
  for (let start = 0; start < bodies.length; start += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies
          .slice(start, start + 10)
          .map((body, index) => ({ Id: String(index), MessageBody: body })),
      }),
    );
  }
}

async function drain(queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return bodies;
    bodies.push(...Messages.map((message) => message.Body ?? ''));
  }
}

/** Waits for what the poller has done so far to meet `condition`. */
const until = (condition: () => boolean) =>
  vi.waitFor(() => expect(condition()).toBe(true), { timeout: 15_000, interval: 50 });

function poller(
  queue: { queueUrl: string; queueArn: string },
  handler: SqsHandler,
  overrides: { batchSize?: number; maxConcurrency?: number; batchingWindowMs?: number } = {},
) {
  return new SqsPoller({
    sqs,
    region,
    functionName: 'worker',
    handler,
    waitTimeSeconds: 1,
    timeoutMs: 5_000,
    ...queue,
    ...overrides,
  });
}

afterEach(() => vi.restoreAllMocks());

describe('SqsPoller', () => {
  it('hands real SQS event records to the handler and deletes what it processed', async () => {
    // Prepare
    const queue = await queueWithDlq();
    await send(queue.queueUrl, ['a', 'b', 'c']);
    const seen: SQSRecord[] = [];
    const worker = poller(queue, async (event) => {
      seen.push(...event.Records);
      return { batchItemFailures: [] };
    });

    // Act
    worker.start();
    await until(() => seen.length === 3);
    await worker.stop();

    // Assess
    expect(seen.map((record) => record.body).sort()).toEqual(['a', 'b', 'c']);
    expect(seen[0]).toMatchObject({
      eventSource: 'aws:sqs',
      eventSourceARN: queue.queueArn,
      awsRegion: region,
      attributes: { ApproximateReceiveCount: '1' },
    });
    expect(worker.stats.recordsDeleted).toBe(3);
    expect(await drain(queue.queueUrl)).toEqual([]);
  });

  it("runs up to its maximum concurrency while a few receives read the queue, as Lambda's pollers do", async () => {
    // Prepare: 30 records, one an invocation, 30 invocations allowed; every invocation waits to be let go.
    const queue = await queueWithDlq();
    await send(
      queue.queueUrl,
      Array.from({ length: 30 }, (_, index) => `r${index}`),
    );
    const send_ = sqs.send.bind(sqs);
    let receiving = 0;
    let peakReceiving = 0;
    vi.spyOn(sqs, 'send').mockImplementation((async (
      command: Parameters<typeof sqs.send>[0],
      options?: object,
    ) => {
      const isReceive = command instanceof ReceiveMessageCommand;
      if (isReceive) peakReceiving = Math.max(peakReceiving, ++receiving);
      try {
        return await send_(command, options);
      } finally {
        if (isReceive) receiving -= 1;
      }
    }) as typeof sqs.send);
    let running = 0;
    let peakRunning = 0;
    let letGo = () => {};
    const released = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    const worker = poller(
      queue,
      async () => {
        peakRunning = Math.max(peakRunning, ++running);
        await released;
        running -= 1;
        return { batchItemFailures: [] };
      },
      { batchSize: 1, maxConcurrency: 30 },
    );

    // Act
    worker.start();
    await until(() => peakRunning === 30);
    letGo();
    await until(() => worker.stats.recordsDeleted === 30);
    await worker.stop();

    // Assess
    expect(peakRunning).toBe(30);
    expect(peakReceiving).toBeLessThanOrEqual(5);
  });

  it('keeps reported failures on the queue, redelivers them with a higher receive count, then the DLQ takes them', async () => {
    // Prepare
    const queue = await queueWithDlq(3);
    await send(queue.queueUrl, ['ok-1', 'fail-1', 'ok-2']);
    const receiveCounts: Record<string, string[]> = {};
    const worker = poller(queue, async (event: SQSEvent): Promise<SQSBatchResponse> => {
      for (const record of event.Records) {
        receiveCounts[record.body] = [
          ...(receiveCounts[record.body] ?? []),
          record.attributes.ApproximateReceiveCount,
        ];
      }
      return {
        batchItemFailures: event.Records.filter((record) => record.body.startsWith('fail')).map((record) => ({
          itemIdentifier: record.messageId,
        })),
      };
    });

    // Act
    worker.start();
    await until(() => (receiveCounts['fail-1']?.length ?? 0) === 3);
    // A fourth receive finds it past maxReceiveCount and moves it to the DLQ.
    await vi.waitFor(async () => expect(await messagesIn(sqs, queue.dlqUrl)).toBe(1), { timeout: 15_000 });
    await worker.stop();

    // Assess
    expect(receiveCounts).toEqual({ 'ok-1': ['1'], 'ok-2': ['1'], 'fail-1': ['1', '2', '3'] });
    expect(await drain(queue.dlqUrl)).toEqual(['fail-1']);
    expect(await drain(queue.queueUrl)).toEqual([]);
  });

  it('leaves the whole batch on the queue when the handler throws', async () => {
    // The poller prints a failed invocation, as Lambda logs it: asserted here, not shown.
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    // Prepare
    const queue = await queueWithDlq(5);
    await send(queue.queueUrl, ['x', 'y']);
    let invocations = 0;
    const worker = poller(
      queue,
      async (event) => {
        invocations += 1;
        if (invocations === 1) throw new Error('handler crashed');
        expect(event.Records.every((record) => record.attributes.ApproximateReceiveCount === '2')).toBe(true);
        return { batchItemFailures: [] };
      },
      { maxConcurrency: 1 },
    );

    // Act
    worker.start();
    await until(() => worker.stats.recordsDeleted === 2);
    await worker.stop();

    // Assess
    expect(worker.stats.failedInvocations).toBe(1);
    expect(invocations).toBe(2);
    expect(printed).toHaveBeenCalledWith(
      'sqs poller worker: invocation failed, the batch stays on the queue',
      expect.objectContaining({ message: 'handler crashed' }),
    );
  });

  it('fails the whole batch when the response names a record that is not in it', async () => {
    // The poller prints a failed invocation, as Lambda logs it: asserted here, not shown.
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    // Prepare
    const queue = await queueWithDlq(5);
    await send(queue.queueUrl, ['p']);
    let invocations = 0;
    const worker = poller(queue, async () => {
      invocations += 1;
      return invocations === 1
        ? { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] }
        : { batchItemFailures: [] };
    });

    // Act
    worker.start();
    await until(() => worker.stats.recordsDeleted === 1);
    await worker.stop();

    // Assess
    expect(worker.stats.failedInvocations).toBe(1);
    expect(invocations).toBe(2);
    expect(printed).toHaveBeenCalledWith(
      'sqs poller worker: invocation failed, the batch stays on the queue',
      expect.objectContaining({ message: expect.stringContaining('not in the batch') }),
    );
  });

  it('runs at most maxConcurrency invocations at once, each with at most batchSize records', async () => {
    // Prepare
    const queue = await queueWithDlq();
    await send(
      queue.queueUrl,
      Array.from({ length: 30 }, (_, index) => `m-${index}`),
    );
    let running = 0;
    let mostAtOnce = 0;
    let largestBatch = 0;
    let processed = 0;
    const worker = poller(
      queue,
      async (event) => {
        running += 1;
        mostAtOnce = Math.max(mostAtOnce, running);
        largestBatch = Math.max(largestBatch, event.Records.length);
        await new Promise((resolve) => setTimeout(resolve, 30));
        running -= 1;
        processed += event.Records.length;
        return { batchItemFailures: [] };
      },
      { batchSize: 4, maxConcurrency: 3 },
    );

    // Act
    worker.start();
    await until(() => processed === 30);
    await worker.stop();

    // Assess
    expect(mostAtOnce).toBeLessThanOrEqual(3);
    expect(largestBatch).toBeLessThanOrEqual(4);
    expect(worker.stats.recordsDeleted).toBe(30);
  });

  it('gathers batches larger than one receive within a batching window, as Lambda does', async () => {
    // Prepare
    const queue = await queueWithDlq();
    await send(
      queue.queueUrl,
      Array.from({ length: 45 }, (_, index) => `m-${index}`),
    );
    const batches: number[] = [];
    const worker = poller(
      queue,
      async (event) => {
        batches.push(event.Records.length);
        return { batchItemFailures: [] };
      },
      { batchSize: 20, maxConcurrency: 1, batchingWindowMs: 300 },
    );

    // Act
    worker.start();
    await until(() => worker.stats.recordsDeleted === 45);
    await worker.stop();

    // Assess: full batches while the queue has records, the rest once the window closes.
    expect(batches).toEqual([20, 20, 5]);
    expect(worker.stats.messagesReceived).toBe(45);
  });
});

describe('redrive on the local cloud (no SQS move tasks there)', () => {
  it('moves every dead letter back to its queue, one by one, bodies unchanged', async () => {
    // Prepare
    const { queueUrl, dlqUrl } = await queueWithDlq();
    const bodies = Array.from({ length: 12 }, (_, index) => `dead-${index}`);
    await send(dlqUrl, bodies);

    // Act
    const moved = await redrive(sqs, { sourceUrl: queueUrl, deadLetterUrl: dlqUrl }, false);

    // Assess
    expect(moved).toEqual({ how: 'one-by-one', messages: 12 });
    expect(await messagesIn(sqs, dlqUrl)).toBe(0);
    const received: string[] = [];
    for (let batch = 0; batch < 5 && received.length < 12; batch += 1) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      received.push(...Messages.map((message) => message.Body ?? ''));
    }
    expect(received.sort()).toEqual([...bodies].sort());
  });
});
