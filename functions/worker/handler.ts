import { setMaxListeners } from 'node:events';
import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { METRICS } from '../../shared/contract/metrics.ts';
import type { RecordQueue } from '../../shared/core/ports.ts';
import { parseRecordMessage, type RecordMessage } from '../../shared/messages/record-message.ts';
import type { BatchDeadline, RecordVerdict, WorkerPorts, WorkerSettings } from '../../shared/worker/batch.ts';
import { processBatch } from '../../shared/worker/process-batch.ts';
import { type Observability, withObservability } from '../observability.ts';
import { countVerdict, publishPerModel, publishPerPool } from './worker-metrics.ts';

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

/** Each message's outcome: its verdict, or why it could not even be read. */
type Outcome = { message: RecordMessage; verdict: RecordVerdict } | { unreadable: unknown };

/**
 * The worker. The batch is decided as a whole (one budget reservation, one ledger transaction per job), then
 * each verdict is SQS's answer for its record, as a partial batch response: a record done is deleted; a retry
 * goes back with the visibility delay the failure table chose; a record waiting for quota is sent again with a
 * delay and the original deleted (so waiting never counts toward maxReceiveCount); a record that cannot be
 * handled returns after the visibility timeout (reaching the DLQ if it never can). A batch that all goes back
 * is not an error: throttling is not a fault of the function. An invocation that fails as a whole still
 * throws, for the error alarm.
 */
export function createWorkerHandler(dependencies: WorkerDependencies) {
  const { metrics, ports } = dependencies;

  const handle = async (
    event: SQSEvent,
    context: Context,
    { signal }: { signal: AbortSignal },
  ): Promise<SQSBatchResponse> => {
    const deadline = deadlineOf(context, signal, dependencies, event.Records.length);
    // Counted first, so an invocation that fails as a whole still reports what it was given.
    metrics.addMetric(METRICS.worker.recordsReceived, MetricUnit.Count, event.Records.length);
    const outcomes = await decideBatch(event.Records, dependencies, context, deadline);
    const notSentBack = await sendBackToWait(ports.queue, dependencies.logger, event.Records, outcomes);
    const batchItemFailures: SQSBatchItemFailure[] = [];
    for (const record of event.Records) {
      const outcome = outcomes.get(record.messageId);
      if (await returnsThroughQueue(record, outcome, notSentBack, dependencies))
        batchItemFailures.push({ itemIdentifier: record.messageId });
    }
    const verdicts = [...outcomes.values()].flatMap((outcome) =>
      'verdict' in outcome ? [outcome.verdict] : [],
    );
    publishPerModel(verdicts);
    publishPerPool(verdicts);
    return { batchItemFailures };
  };

  return withObservability(middy(handle, { timeoutEarlyInMillis: 1_000 }), dependencies);
}

/** Reads every message and hands the readable ones to the domain as one batch. */
async function decideBatch(
  records: readonly SQSRecord[],
  { ports, settings }: WorkerDependencies,
  context: Context,
  deadline: BatchDeadline,
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  const readable: Array<{ messageId: string; message: RecordMessage }> = [];
  for (const record of records) {
    try {
      readable.push({ messageId: record.messageId, message: parseRecordMessage(record.body) });
    } catch (error) {
      outcomes.set(record.messageId, { unreadable: error });
    }
  }
  const verdicts = await processBatch(
    readable.map(({ message }) => message),
    ports,
    { ...settings, owner: context.awsRequestId },
    deadline,
  );
  readable.forEach(({ messageId, message }, index) => {
    const verdict: RecordVerdict = verdicts[index] ?? {
      kind: 'unhandled',
      error: new Error('the record got no verdict'),
    };
    outcomes.set(messageId, { message, verdict });
  });
  return outcomes;
}

/**
 * One record's answer to SQS: true reports it as a batch item failure, so it returns through the queue (after
 * its visibility timeout, or the delay set here); false lets SQS delete it.
 */
async function returnsThroughQueue(
  record: SQSRecord,
  outcome: Outcome | undefined,
  notSentBack: ReadonlySet<string>,
  { metrics, logger, ports }: WorkerDependencies,
): Promise<boolean> {
  if (outcome === undefined || 'unreadable' in outcome) {
    unhandled({ metrics, logger }, record, outcome?.unreadable ?? new Error('the record got no outcome'));
    return true;
  }
  const { message, verdict } = outcome;
  countVerdict(metrics, verdict);
  logger.debug('record processed', {
    jobId: message.jobId,
    recordId: message.recordId,
    line: message.lineNumber,
    verdict: verdict.kind,
  });
  if (verdict.kind === 'unhandled') {
    unhandled({ metrics, logger }, record, verdict.error);
    return true;
  }
  if (verdict.kind === 'retry') {
    await ports.queue.changeVisibility(record.receiptHandle, verdict.delaySeconds);
    return true;
  }
  // A wait sent again as a new message leaves the original to be deleted; one that could not be returns.
  return verdict.kind === 'wait' && notSentBack.has(record.messageId);
}

/**
 * Records that wait for quota go back as new messages with a delay, in one send; if that fails, they return
 * through visibility instead. Returns the messages that were not sent back.
 */
async function sendBackToWait(
  queue: RecordQueue,
  logger: Logger,
  records: readonly SQSRecord[],
  outcomes: ReadonlyMap<string, Outcome>,
): Promise<ReadonlySet<string>> {
  const waiting = records.flatMap((record) => {
    const outcome = outcomes.get(record.messageId);
    return outcome !== undefined && 'verdict' in outcome && outcome.verdict.kind === 'wait'
      ? [{ record, message: outcome.message, delaySeconds: outcome.verdict.delaySeconds }]
      : [];
  });
  if (waiting.length === 0) return new Set();
  try {
    await queue.send(
      waiting.map(({ message }) => ({ ...message, waits: (message.waits ?? 0) + 1 })),
      waiting.map(({ delaySeconds }) => delaySeconds),
    );
    return new Set();
  } catch (error) {
    logger.warn('records waiting for quota could not be sent again; they return through the queue', {
      error,
    });
    for (const { record, delaySeconds } of waiting)
      await queue.changeVisibility(record.receiptHandle, delaySeconds);
    return new Set(waiting.map(({ record }) => record.messageId));
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

/** A record the worker could not handle at all: counted and logged; it returns through the queue. */
function unhandled({ metrics, logger }: Observability, record: SQSRecord, error: unknown): void {
  metrics.addMetric(METRICS.worker.recordsUnhandled, MetricUnit.Count, 1);
  logger.error('record could not be handled; it returns through the queue', {
    messageId: record.messageId,
    receiveCount: record.attributes.ApproximateReceiveCount,
    error,
  });
}
