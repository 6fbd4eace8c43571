import { setTimeout as sleep } from 'node:timers/promises';
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { mapWithLimit } from '../../shared/core/concurrency.ts';
import type { RecordQueue } from '../../shared/core/ports.ts';
import { PipelineError } from '../../shared/errors.ts';
import { type RecordMessage, recordMessageBody } from '../../shared/messages/record-message.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';

const ENTRIES_PER_BATCH = 10;
const BATCHES_IN_FLIGHT = 8;
const { attempts: ATTEMPTS, baseDelayMs: BASE_DELAY_MS } = RETRY_LAYERS.sqsSend;

export class SqsRecordQueue implements RecordQueue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  /** SendMessageBatch, ten at a time, several calls in flight; entries SQS refuses are sent again. */
  async send(messages: readonly RecordMessage[], delaysSeconds?: readonly number[]): Promise<void> {
    const entries = messages.map((message, index) => ({
      MessageBody: recordMessageBody(message),
      ...(delaysSeconds?.[index] === undefined ? {} : { DelaySeconds: delaysSeconds[index] }),
    }));
    const batches: Array<typeof entries> = [];
    for (let start = 0; start < entries.length; start += ENTRIES_PER_BATCH) {
      batches.push(entries.slice(start, start + ENTRIES_PER_BATCH));
    }
    await mapWithLimit(batches, BATCHES_IN_FLIGHT, (batch) => this.sendBatch(batch));
  }

  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }

  private async sendBatch(
    batch: ReadonlyArray<{ MessageBody: string; DelaySeconds?: number }>,
  ): Promise<void> {
    let pending = batch.map((entry, index) => ({ ...entry, Id: String(index) }));
    for (let attempt = 1; attempt <= ATTEMPTS && pending.length > 0; attempt += 1) {
      const result = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }),
      );
      const failed = new Set((result.Failed ?? []).map((entry) => entry.Id));
      pending = pending.filter((entry) => failed.has(entry.Id));
      // Full jitter: senders refused together do not all come back at the same moment.
      if (pending.length > 0) await sleep(Math.random() * BASE_DELAY_MS * 2 ** attempt);
    }
    if (pending.length > 0) {
      throw new PipelineError(
        'ENQUEUE_FAILED',
        `SQS refused ${pending.length} record messages ${ATTEMPTS} times.`,
      );
    }
  }
}
