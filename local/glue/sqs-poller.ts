import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { invokeWithTimeout } from './lambda-context.ts';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

export interface SqsPollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  readonly functionName: string;
  readonly handler: SqsHandler;
  /** Records per invocation: up to 10, or more with a batching window, as Lambda allows. */
  readonly batchSize?: number;
  /** How long to keep gathering records for one invocation (MaximumBatchingWindowInSeconds); 0 sends what one receive got. */
  readonly batchingWindowMs?: number;
  /** Concurrent invocations at most (the event source's maximum concurrency). */
  readonly maxConcurrency?: number;
  /** The function's timeout: an invocation past it fails its whole batch. */
  readonly timeoutMs?: number;
  /** Long-poll wait per ReceiveMessage, in seconds. */
  readonly waitTimeSeconds?: number;
  /** Whether a batch also goes to a second invocation at once, as SQS's at-least-once delivery allows. */
  readonly duplicateDelivery?: () => boolean;
  /** Failed invocations are expected: count them without printing each. */
  readonly quiet?: boolean;
}

export interface PollerStats {
  /** Messages received, each receive of a message counted (a message that comes back counts again). */
  messagesReceived: number;
  invocations: number;
  failedInvocations: number;
  recordsDeleted: number;
  recordsReportedFailed: number;
}

/**
 * Receive loops that read batches, however many invocations may run: Lambda reads an SQS queue with five
 * pollers when messages are there and adds more as they keep coming, each feeding several invocations. One
 * long poll per invocation would hold hundreds of connections with a high maximum concurrency, and starve
 * every other request of the same client.
 */
const RECEIVERS = 5;

/**
 * Lambda's SQS event source, locally: long-polls the queue, invokes the handler with real SQS event records
 * (ApproximateReceiveCount included), up to `maxConcurrency` invocations at once, and reads a batch only when
 * an invocation is free to take it. With ReportBatchItemFailures semantics the records a handler reports
 * failed stay on the queue and the rest are deleted; a handler that throws (or times out, or reports an
 * unknown id) fails the whole batch. Failed records come back after their visibility timeout, and the
 * queue's redrive policy moves them to the DLQ after maxReceiveCount, as SQS does.
 */
export class SqsPoller {
  readonly stats: PollerStats = {
    messagesReceived: 0,
    invocations: 0,
    failedInvocations: 0,
    recordsDeleted: 0,
    recordsReportedFailed: 0,
  };
  private abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly running = new Set<Promise<void>>();
  private slots = new Slots(0);

  constructor(private readonly options: SqsPollerOptions) {}

  /** Starts polling (again, after a stop: Lambda's event source can be disabled and enabled). */
  start(): void {
    if (this.loops.length > 0) return;
    this.abort = new AbortController();
    const concurrency = this.options.maxConcurrency ?? 2;
    const receivers = Math.min(concurrency, RECEIVERS);
    this.slots = new Slots(concurrency);
    // Every loop's receive, and its wait for a free invocation, listens to the one signal that stops them all.
    setMaxListeners(2 * receivers + 10, this.abort.signal);
    this.loops = Array.from({ length: receivers }, () => this.loop());
  }

  /** Stops polling and waits for the invocations under way. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all(this.loops);
    await Promise.all(this.running);
    this.loops = [];
  }

  /** Waits for a free invocation, reads a batch for it, and starts it without waiting for it to end. */
  private async loop(): Promise<void> {
    while (await this.slots.acquire(this.abort.signal)) {
      const messages = await this.gather();
      if (messages.length === 0) {
        this.slots.release();
        continue;
      }
      const invocation = (
        this.options.duplicateDelivery?.() === true
          ? Promise.all([this.invoke(messages), this.invoke(messages)]).then(() => {})
          : this.invoke(messages)
      ).finally(() => {
        this.running.delete(invocation);
        this.slots.release();
      });
      this.running.add(invocation);
    }
  }

  /**
   * One invocation's records: what one receive gets, or, with a batching window, receives until the batch is
   * full or the window has passed since the first record came.
   */
  private async gather(): Promise<Message[]> {
    const batchSize = this.options.batchSize ?? 10;
    const windowMs = this.options.batchingWindowMs ?? 0;
    const messages: Message[] = [];
    let closesAt = Number.POSITIVE_INFINITY;
    while (messages.length < batchSize && !this.abort.signal.aborted) {
      const leftMs = closesAt - Date.now();
      if (leftMs <= 0) break;
      // Long-poll for the first record; then never past the window, or records gathered early could
      // become visible again before the invocation.
      const received = await this.receive(
        Math.min(10, batchSize - messages.length),
        messages.length === 0 ? (this.options.waitTimeSeconds ?? 1) : Math.min(1, Math.floor(leftMs / 1000)),
      );
      if (received.length === 0 && messages.length > 0) await sleep(Math.min(leftMs, 50));
      messages.push(...received);
      if (messages.length > 0 && closesAt === Number.POSITIVE_INFINITY) closesAt = Date.now() + windowMs;
      if (windowMs === 0 && messages.length > 0) break;
    }
    return messages;
  }

  private async receive(maxMessages: number, waitTimeSeconds: number): Promise<Message[]> {
    try {
      const received = await this.options.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.options.queueUrl,
          MaxNumberOfMessages: maxMessages,
          WaitTimeSeconds: waitTimeSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: this.abort.signal },
      );
      const messages = received.Messages ?? [];
      this.stats.messagesReceived += messages.length;
      return messages;
    } catch (error) {
      if (!this.abort.signal.aborted) {
        console.error(`sqs poller ${this.options.functionName}: receive failed`, error);
      }
      return [];
    }
  }

  private async invoke(messages: Message[]): Promise<void> {
    const records = messages.map((message) => this.recordOf(message));
    this.stats.invocations += 1;
    let failedIds: Set<string>;
    try {
      const response = await invokeWithTimeout(
        this.options.functionName,
        this.options.timeoutMs ?? 60_000,
        (context) => this.options.handler({ Records: records }, context),
      );
      failedIds = this.failedIdsOf(response, records);
    } catch (error) {
      this.stats.failedInvocations += 1;
      if (this.options.quiet !== true)
        console.error(
          `sqs poller ${this.options.functionName}: invocation failed, the batch stays on the queue`,
          error,
        );
      return;
    }
    this.stats.recordsReportedFailed += failedIds.size;
    const done = messages.filter((message) => !failedIds.has(message.MessageId ?? ''));
    for (let start = 0; start < done.length; start += 10) {
      const entries = done.slice(start, start + 10).map((message, index) => ({
        Id: String(index),
        ReceiptHandle: message.ReceiptHandle,
      }));
      const result = await this.options.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.options.queueUrl, Entries: entries }),
      );
      this.stats.recordsDeleted += result.Successful?.length ?? 0;
    }
  }

  /** Lambda fails the whole batch when a response names an item that is not in it. */
  private failedIdsOf(response: SQSBatchResponse | undefined, records: SQSRecord[]): Set<string> {
    const failures = response?.batchItemFailures ?? [];
    const known = new Set(records.map((record) => record.messageId));
    const ids = new Set(failures.map((failure) => failure.itemIdentifier));
    if ([...ids].some((id) => !known.has(id))) {
      throw new Error('batchItemFailures names an itemIdentifier that is not in the batch');
    }
    return ids;
  }

  private recordOf(message: Message): SQSRecord {
    const attributes = message.Attributes ?? {};
    return {
      messageId: message.MessageId ?? '',
      receiptHandle: message.ReceiptHandle ?? '',
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
        SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
        SenderId: attributes.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: Object.fromEntries(
        Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
          name,
          {
            dataType: value.DataType ?? 'String',
            ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
          },
        ]),
      ),
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.options.queueArn,
      awsRegion: this.options.region,
    };
  }
}

/** Invocations free to start: a counting semaphore whose waits end when `signal` aborts. */
class Slots {
  private readonly waiters: Array<() => void> = [];

  constructor(private free: number) {}

  /** Takes a slot, waiting for one; false (and no slot) when `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const onAbort = () => {
        this.waiters.splice(this.waiters.indexOf(granted), 1);
        resolve(false);
      };
      const granted = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      this.waiters.push(granted);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Gives a slot back, to the longest waiter if any. */
  release(): void {
    const next = this.waiters.shift();
    if (next === undefined) this.free += 1;
    else next();
  }
}
