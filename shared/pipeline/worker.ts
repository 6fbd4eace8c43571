import { type Catalog, defaultCatalog } from '../catalog/catalog.ts';
import type { TokenUsage } from '../cost/cost.ts';
import { BudgetExhaustedError, PipelineError } from '../errors.ts';
import { classifyFailure, decideRetry, type Failure, type RetryPolicy } from '../failures.ts';
import { parseLine } from '../input/parse-line.ts';
import type { LineResult } from '../input/records.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { MessagesResponse, RecordOutcome } from '../output/result-records.ts';
import { buildInvocation, type Invocation } from '../request/build-request.ts';
import { type CompletionPorts, completeFromStore, completionOf, finishRecord } from './complete.ts';
import type { JobRecord, ModelInvoker, RecordCompletion, StoredResult, TokenBudget } from './ports.ts';

export interface WorkerPorts extends CompletionPorts {
  readonly model: ModelInvoker;
  readonly budget: TokenBudget;
}

export interface WorkerSettings {
  readonly policy: RetryPolicy;
  /** Quota tokens one output token costs. */
  readonly outputBurndown: number;
  /** How long an attempt holds its record; longer than the function can run. */
  readonly leaseSeconds: number;
  /** Who holds a lease: unique per invocation. */
  readonly owner: string;
  /** Seconds before trying again a record another worker holds right now. */
  readonly heldRetrySeconds?: number;
  readonly random?: () => number;
  readonly catalog?: Catalog;
}

export type RecordVerdict =
  | {
      readonly kind: 'done';
      readonly status: RecordOutcome['status'] | 'already-done';
      /** What the record added to its job (absent when it was done before). */
      readonly completion?: RecordCompletion;
      /** The model id called and how long Bedrock took, for records that reached it. */
      readonly model?: { readonly modelId: string; readonly latencyMs: number };
    }
  | { readonly kind: 'retry'; readonly delaySeconds: number; readonly failure: Failure | undefined };

/**
 * One record from the queue to its result. It never calls Bedrock for a record that is done, cancelled or
 * already answered; it waits (a visibility delay) when the shared budget has no room instead of being
 * throttled; and every failure goes through the failure table: retry later with backoff, or an error result.
 * Unexpected errors propagate: the message then returns through the queue and, if it keeps failing, to the DLQ.
 */
export async function processRecord(
  message: RecordMessage,
  job: JobRecord | undefined,
  ports: WorkerPorts,
  settings: WorkerSettings,
  signal: AbortSignal,
): Promise<RecordVerdict> {
  if (job === undefined) throw new PipelineError('UNKNOWN_JOB', `No job ${message.jobId} in the ledger.`);
  if (await ports.ledger.isRecordDone(job.jobId, message.lineNumber))
    return { kind: 'done', status: 'already-done' };

  const record = await readRecord(message, ports, settings.catalog ?? defaultCatalog);
  let attempts = 0;
  const subject = {
    recordId: message.recordId,
    lineNumber: message.lineNumber,
    family: record.ok ? record.record.family : record.error.family,
    ...(record.ok && record.record.family === 'bedrock' ? { modelInput: record.record.body } : {}),
  };
  const finish = async (
    outcome: RecordOutcome,
    billing?: Parameters<typeof completionOf>[3],
    model?: { modelId: string; latencyMs: number },
  ): Promise<RecordVerdict> => {
    const result: StoredResult = {
      subject,
      outcome,
      completion: completionOf(message.lineNumber, subject.family, outcome, billing),
      timing: { finishedAt: new Date().toISOString(), attempts, ...model },
    };
    const stored = await finishRecord(ports, job, result);
    return {
      kind: 'done',
      status: outcome.status,
      completion: stored.completion,
      ...(model === undefined ? {} : { model }),
    };
  };
  const fail = (error: unknown, suffix = '') => {
    const failure = classifyFailure(error);
    return finish({ status: 'errored', failure: { ...failure, message: `${failure.message}${suffix}` } });
  };

  if (job.cancelRequested) return finish({ status: 'canceled' });
  if (!record.ok) return fail(new PipelineError(record.error.code, record.error.message));
  let invocation: Invocation;
  try {
    invocation = buildInvocation(record.record, job.settings, settings.catalog);
  } catch (error) {
    if (error instanceof PipelineError) return fail(error);
    throw error;
  }

  const budgetKey = `${invocation.resolved.region}#${invocation.modelId}`;
  const reservation = await ports.budget.reserve(
    budgetKey,
    invocation.estimate.upper + invocation.maxTokens * settings.outputBurndown,
  );
  if ('retryAfterSeconds' in reservation) {
    const failure = classifyFailure(
      new BudgetExhaustedError(
        `No room in the ${budgetKey} token budget this minute.`,
        reservation.retryAfterSeconds,
      ),
    );
    await ports.ledger.recordRetry(job.jobId, 'budget-wait');
    return retryLater(failure, 1, settings);
  }

  const lease = await ports.ledger.leaseRecord(
    job.jobId,
    message.lineNumber,
    settings.owner,
    settings.leaseSeconds,
  );
  if (lease.kind === 'acquired') attempts = lease.attempt;
  // Only a lease holder stores a result, so on a first attempt there is none to adopt: skip the read.
  const adopted =
    lease.kind === 'acquired' &&
    lease.attempt > 1 &&
    (await completeFromStore(ports, job, message.lineNumber));
  if (lease.kind !== 'acquired' || adopted) {
    await ports.budget.settle(reservation, 0);
    if (lease.kind === 'held')
      return { kind: 'retry', delaySeconds: settings.heldRetrySeconds ?? 30, failure: undefined };
    return { kind: 'done', status: 'already-done' };
  }

  let response: MessagesResponse;
  const calledAt = Date.now();
  try {
    response = await ports.model.invoke(invocation.modelId, invocation.bodyJson, signal);
  } catch (error) {
    await ports.budget.settle(reservation, 0);
    const failure = classifyFailure(error);
    if (failure.throttle) await ports.budget.recordThrottle(budgetKey);
    const decision = decideRetry(failure, lease.attempt, settings.policy, settings.random);
    if (decision.action === 'give-up') {
      return fail(error, failure.retry === 'never' ? '' : ` (gave up: ${decision.reason})`);
    }
    await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner);
    await ports.ledger.recordRetry(job.jobId, failure.throttle ? 'bedrock-throttle' : 'failure');
    return { kind: 'retry', delaySeconds: decision.delaySeconds, failure };
  }

  const usage = usageOf(response);
  await ports.budget.settle(
    reservation,
    usage.input_tokens +
      (usage.cache_creation_input_tokens ?? 0) +
      usage.output_tokens * settings.outputBurndown,
  );
  await ports.budget.recordSuccess(budgetKey);
  return finish(
    { status: 'succeeded', response },
    { usage, resolved: invocation.resolved },
    { modelId: invocation.modelId, latencyMs: Date.now() - calledAt },
  );
}

function retryLater(failure: Failure, attempt: number, settings: WorkerSettings): RecordVerdict {
  const decision = decideRetry(failure, attempt, settings.policy, settings.random);
  return {
    kind: 'retry',
    delaySeconds: decision.action === 'retry' ? decision.delaySeconds : settings.policy.laterDelaySeconds,
    failure,
  };
}

/** The line again, by the byte range the enqueue step recorded, from the same object version. */
async function readRecord(message: RecordMessage, ports: WorkerPorts, catalog: Catalog): Promise<LineResult> {
  const { source, lineNumber } = message;
  const bytes = await ports.store.readRange(source, source.byteStart, source.byteEnd);
  return parseLine(bytes, lineNumber, catalog.requestBodyLimitBytes);
}

function usageOf(response: MessagesResponse): TokenUsage {
  const usage = (response.usage ?? {}) as Partial<TokenUsage>;
  return {
    input_tokens: usage.input_tokens ?? 0,
    output_tokens: usage.output_tokens ?? 0,
    cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
  };
}
