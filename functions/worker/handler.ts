import { setMaxListeners } from 'node:events';
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseRecordMessage, type RecordMessage } from '../../shared/messages/record-message.ts';
import type { RecordQueue } from '../../shared/pipeline/ports.ts';
import { processBatch } from '../../shared/pipeline/worker.ts';
import type {
  BatchDeadline,
  RecordVerdict,
  WorkerPorts,
  WorkerSettings,
} from '../../shared/pipeline/worker-batch.ts';
import { METRICS } from '../metrics.ts';
import { type Observability, withObservability } from '../observability.ts';
import { countVerdict, publishPerModel } from './worker-metrics.ts';

export interface WorkerDependencies extends Observability {
  readonly ports: WorkerPorts & { readonly queue: RecordQueue };
  readonly settings: Omit<WorkerSettings, 'owner'>;
  /** Time kept back from the deadline to report records that could not finish. */
  readonly wrapUpMs?: number;
}

/**
 * Of the time an invocation has, the share a batch may spend waiting for its tokens; the rest is for the
 * calls. A longer wait sends the records back with a delay instead.
 */
const WAIT_SHARE = 0.5;

type Received = { record: SQSRecord; message: RecordMessage } | { record: SQSRecord; error: unknown };

/**
 * The worker: parses the batch, hands it to the domain, and maps each verdict to the queue. Records to retry
 * go back with a visibility delay chosen by the failure table and are reported as batch item failures;
 * records waiting for quota are sent again with a delay and the original deleted, so waiting never counts
 * toward the queue's maxReceiveCount; a record that throws is reported and returns after the visibility
 * timeout (and, if it always throws, reaches the DLQ).
 */
export function createWorkerHandler(dependencies: WorkerDependencies) {
  const { logger, metrics, ports } = dependencies;

  const handle = async (
    event: SQSEvent,
    context: Context,
    { signal }: { signal: AbortSignal },
  ): Promise<SQSBatchResponse> => {
    const deadline = deadlineOf(context, signal, dependencies, event.Records.length);
    // Counted first, so an invocation that fails as a whole still reports what it was given.
    metrics.addMetric(METRICS.worker.recordsReceived, MetricUnit.Count, event.Records.length);
    const received = event.Records.map(receive);
    const parsed = received.filter((entry) => 'message' in entry);
    const verdicts = await processBatch(
      parsed.map((entry) => entry.message),
      ports,
      { ...dependencies.settings, owner: context.awsRequestId },
      deadline,
    );

    const failures: SQSBatchItemFailure[] = [];
    const waiting: Waiting[] = [];
    const verdictsInOrder = verdicts.values();
    for (const entry of received) {
      const { record } = entry;
      if ('error' in entry) {
        unhandled(dependencies, record, entry.error);
        failures.push({ itemIdentifier: record.messageId });
        continue;
      }
      const verdict: RecordVerdict = verdictsInOrder.next().value ?? {
        kind: 'unhandled',
        error: new Error('the record got no verdict'),
      };
      countVerdict(metrics, verdict);
      logger.debug('record processed', {
        jobId: entry.message.jobId,
        recordId: entry.message.recordId,
        line: entry.message.lineNumber,
        verdict: verdict.kind,
      });
      if (verdict.kind === 'wait')
        waiting.push({ record, message: entry.message, delaySeconds: verdict.delaySeconds });
      if (verdict.kind === 'unhandled') {
        unhandled(dependencies, record, verdict.error);
        failures.push({ itemIdentifier: record.messageId });
      }
      if (verdict.kind === 'retry') {
        await ports.queue.changeVisibility(record.receiptHandle, verdict.delaySeconds);
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    failures.push(...(await sendBackToWait(ports.queue, logger, waiting)));
    publishPerModel(verdicts);
    return { batchItemFailures: failures };
  };

  return withObservability(middy(handle, { timeoutEarlyInMillis: 1_000 }), dependencies);
}

type Waiting = { record: SQSRecord; message: RecordMessage; delaySeconds: number };

/** Records that wait for quota go back as new messages with a delay; if that fails, through visibility. */
async function sendBackToWait(
  queue: RecordQueue,
  logger: Logger,
  waiting: readonly Waiting[],
): Promise<SQSBatchItemFailure[]> {
  if (waiting.length === 0) return [];
  try {
    await queue.send(
      waiting.map(({ message }) => ({ ...message, waits: (message.waits ?? 0) + 1 })),
      waiting.map(({ delaySeconds }) => delaySeconds),
    );
    return [];
  } catch (error) {
    logger.warn('records waiting for quota could not be sent again; they return through the queue', {
      error,
    });
    for (const { record, delaySeconds } of waiting)
      await queue.changeVisibility(record.receiptHandle, delaySeconds);
    return waiting.map(({ record }) => ({ itemIdentifier: record.messageId }));
  }
}

/**
 * The batch's deadline: calls end by the function's own, less the time kept to report; waiting for tokens
 * may use only a share of it.
 */
function deadlineOf(
  context: Context,
  signal: AbortSignal,
  dependencies: Pick<WorkerDependencies, 'settings' | 'wrapUpMs'>,
  records: number,
): BatchDeadline {
  const usableMs = Math.max(1, context.getRemainingTimeInMillis() - (dependencies.wrapUpMs ?? 5_000));
  const deadline = {
    signal: AbortSignal.any([signal, AbortSignal.timeout(usableMs)]),
    latestStart: dependencies.settings.clock.now() + usableMs * WAIT_SHARE,
  };
  // Every record of the batch listens to it: its wait for tokens and its call.
  setMaxListeners(2 * records + 10, deadline.signal);
  return deadline;
}

/** A queue record and its message, or why it has none. */
function receive(record: SQSRecord): Received {
  try {
    return { record, message: parseRecordMessage(record.body) };
  } catch (error) {
    return { record, error };
  }
}

/** A record the worker could not handle at all: counted and logged; it returns through the queue. */
function unhandled({ metrics, logger }: Observability, record: SQSRecord, error: unknown): void {
  metrics.addMetric(METRICS.worker.recordsUnhandled, MetricUnit.Count, 1);
  logger.error('record could not be handled; it returns through the queue', {
    messageId: record.messageId,
    receiveCount: record.attributes.ApproximateReceiveCount,
    error,
  });
}
