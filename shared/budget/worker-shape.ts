import { type QuotaShape, type TypicalRecord, workerConcurrencyFor } from '../budget/throughput.ts';
import { OUTPUT_TOKEN_BURNDOWN } from '../config.ts';

/**
 * The worker's shape, derived once from the quota: invocations at once, records per invocation and how long
 * they are gathered, the function's timeout, how long SQS hides a received record, and how long one attempt
 * holds its record. The stack, `run` and `local up` all take it from here, so a local run behaves like the
 * deployed pipeline.
 */
export interface WorkerShape {
  /** Worker invocations at once (the event source's maximum concurrency). */
  readonly concurrency: number;
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  readonly timeoutSeconds: number;
  /** Never set beside the timeout: see `visibilityTimeoutFor`. */
  readonly visibilityTimeoutSeconds: number;
  readonly leaseSeconds: number;
}

/**
 * How the queue feeds the worker: up to `size` records an invocation, gathered for at most `windowSeconds`.
 * A batch shares one budget reservation and one settlement, so larger batches write the budget less.
 */
export const WORKER_BATCH = { size: 20, windowSeconds: 1 } as const;

/** Long enough for a batch to wait its turn in the budget and still make its calls: see the worker's deadline. */
export const DEFAULT_WORKER_TIMEOUT_SECONDS = 300;

/** A record as the quota sees it where nothing better is known: it sizes the workers and the alarms. */
export const DEFAULT_TYPICAL_RECORD: TypicalRecord = {
  inputTokens: 1_000,
  outputTokens: 400,
  latencySeconds: 10,
};

/**
 * A message stays hidden this many times the consuming function's timeout: AWS's advice for Lambda event
 * sources, so a batch the poller holds while the function retries is not handed out twice.
 */
export const VISIBILITY_PER_FUNCTION_TIMEOUT = 6;

/** The visibility timeout of a queue whose consumer may run `timeoutSeconds`. */
export function visibilityTimeoutFor(timeoutSeconds: number): number {
  return Math.ceil(timeoutSeconds * VISIBILITY_PER_FUNCTION_TIMEOUT);
}

/**
 * How long an attempt holds its record: the invocation's timeout and a margin (a fifth of it, 5 to 60 s) for
 * an answer already on its way when the invocation ends, so no second call starts while the first may answer.
 */
export function leaseSecondsFor(timeoutSeconds: number): number {
  return Math.ceil(timeoutSeconds + Math.min(60, Math.max(5, timeoutSeconds / 5)));
}

export interface WorkerChoices {
  readonly tokensPerMinute: number;
  readonly typicalRecord?: TypicalRecord;
  readonly timeoutSeconds?: number;
  readonly batchSize?: number;
}

/** The worker's shape for a quota, from the deployment's choices and the defaults above. */
export function workerShapeFor(choices: WorkerChoices): WorkerShape {
  const timeoutSeconds = choices.timeoutSeconds ?? DEFAULT_WORKER_TIMEOUT_SECONDS;
  const batchSize = choices.batchSize ?? WORKER_BATCH.size;
  return {
    concurrency: workerConcurrencyFor(quotaShapeOf(choices), batchSize),
    batchSize,
    batchingWindowSeconds: WORKER_BATCH.windowSeconds,
    timeoutSeconds,
    visibilityTimeoutSeconds: visibilityTimeoutFor(timeoutSeconds),
    leaseSeconds: leaseSecondsFor(timeoutSeconds),
  };
}

/** The quota and the typical record, as the throughput rules take them. */
export function quotaShapeOf(choices: Pick<WorkerChoices, 'tokensPerMinute' | 'typicalRecord'>): QuotaShape {
  return {
    tokensPerMinute: choices.tokensPerMinute,
    outputBurndown: OUTPUT_TOKEN_BURNDOWN,
    record: choices.typicalRecord ?? DEFAULT_TYPICAL_RECORD,
  };
}
