import type { ReservationEstimator } from '../budget/reservation-estimate.ts';
import { type Catalog, defaultCatalog } from '../catalog/catalog.ts';
import type { TokenUsage } from '../cost/cost.ts';
import { PipelineError } from '../errors.ts';
import { classifyFailure, decideRetry, type Failure, type RetryPolicy } from '../failures.ts';
import { parseLine } from '../input/parse-line.ts';
import type { LineResult } from '../input/records.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { MessagesResponse, RecordOutcome } from '../output/result-records.ts';
import { buildInvocation, type Invocation } from '../request/build-request.ts';
import type { Clock } from './clock.ts';
import {
  type CompletionPorts,
  completionOf,
  countInLedger,
  readStoredResult,
  storeResult,
} from './complete.ts';
import { NO_RETRIES } from './job.ts';
import type {
  JobRecord,
  JobRetries,
  JobUpdate,
  ModelInvoker,
  RecordCompletion,
  StoredResult,
  TokenBudget,
} from './ports.ts';

/**
 * How the queue feeds the worker: up to `size` records an invocation, gathered for at most `windowSeconds`.
 * A batch shares one budget reservation and one settlement, so larger batches write the budget less.
 */
export const WORKER_BATCH = { size: 20, windowSeconds: 1 } as const;

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
  /** What the budget takes per call, learnt from the calls answered so far (it outlives one invocation). */
  readonly reservations: ReservationEstimator;
  /** Inputs estimated above this many tokens are counted exactly (CountTokens) before reserving for them. */
  readonly countTokensAbove: number;
  readonly clock: Clock;
  /** Seconds before trying again a record another worker holds right now. */
  readonly heldRetrySeconds?: number;
  readonly random?: () => number;
  readonly catalog?: Catalog;
}

/** How long a batch may wait for its tokens, and the signal that ends its calls (the function's deadline). */
export interface BatchDeadline {
  readonly latestStart: number;
  readonly signal: AbortSignal;
}

export type RecordVerdict =
  | {
      readonly kind: 'done';
      readonly status: RecordOutcome['status'] | 'already-done';
      /** What the record added to its job (absent when it was counted before). */
      readonly completion?: RecordCompletion;
      /** The model id called and how long Bedrock took, for records that reached it. */
      readonly model?: { readonly modelId: string; readonly latencyMs: number };
      /** How long the record waited in this invocation for its tokens. */
      readonly waitedMs?: number;
    }
  /** Back through the queue after `delaySeconds` (a visibility change): a failed attempt to try again. */
  | { readonly kind: 'retry'; readonly delaySeconds: number; readonly failure: Failure | undefined }
  /** Sent again with a delay: the quota has no room before the batch's deadline. Not a failure. */
  | { readonly kind: 'wait'; readonly delaySeconds: number; readonly cause: 'budget' | 'daily-quota' }
  /** Something unexpected: the message returns after its visibility timeout and, if it keeps failing, to the DLQ. */
  | { readonly kind: 'unhandled'; readonly error: unknown };

/** A record ready to call Bedrock: its body, its budget and what to reserve for it. */
interface Call {
  readonly message: RecordMessage;
  readonly job: JobRecord;
  readonly subject: StoredResult['subject'];
  readonly invocation: Invocation;
  /** The shared budget it spends from: region and model id, as Bedrock keeps quotas. */
  readonly budgetKey: string;
  /** Where the estimator learns and looks up this job's calls to this model. */
  readonly calibrationKey: string;
  readonly tokens: number;
}

interface CallOutcome {
  readonly verdict: RecordVerdict;
  /** What Bedrock charged the quota for the call (the reservation, when that is unknown). */
  readonly charged: number;
  readonly failure?: Failure;
}

/**
 * A batch of records from the queue to their verdicts. Records that need no call (done, broken, cancelled)
 * finish at once. The rest reserve their tokens from the shared budget together, one reservation per budget,
 * wait in this invocation until the tokens are there, or, if that is past the batch's deadline, go back to
 * the queue with a delay, which is not a failure. Each call then takes its record's lease, calls Bedrock and
 * stores its result; every failure goes through the failure table. Every reservation is settled to what
 * Bedrock charged, and the batch's records and retries are counted in the ledger in one transaction.
 */
export async function processBatch(
  messages: readonly RecordMessage[],
  ports: WorkerPorts,
  settings: WorkerSettings,
  deadline: BatchDeadline,
): Promise<RecordVerdict[]> {
  const tally = new BatchTally();
  const jobs = new Map<string, Promise<JobRecord | undefined>>();
  const jobOf = (jobId: string) => {
    const job = jobs.get(jobId) ?? ports.ledger.getJob(jobId);
    jobs.set(jobId, job);
    return job;
  };
  const verdicts = new Map<RecordMessage, RecordVerdict>();
  const calls: Call[] = [];
  await Promise.all(
    messages.map(async (message) => {
      try {
        const prepared = await prepare(
          message,
          await jobOf(message.jobId),
          ports,
          settings,
          deadline.signal,
          tally,
        );
        if ('verdict' in prepared) verdicts.set(message, prepared.verdict);
        else calls.push(prepared.call);
      } catch (error) {
        verdicts.set(message, { kind: 'unhandled', error });
      }
    }),
  );
  const groups = new Map<string, Call[]>();
  for (const call of calls) groups.set(call.budgetKey, [...(groups.get(call.budgetKey) ?? []), call]);
  await Promise.all(
    [...groups].map(async ([budgetKey, group]) => {
      for (const [call, verdict] of await callWithin(budgetKey, group, ports, settings, deadline, tally)) {
        verdicts.set(call.message, verdict);
      }
    }),
  );
  const counted = await countInLedger(ports, tally.updates());
  return messages.map((message) => counting(verdicts.get(message), message, counted));
}

/** Reads the record and decides what it needs: nothing (done), a result without a call, or a call. */
async function prepare(
  message: RecordMessage,
  job: JobRecord | undefined,
  ports: WorkerPorts,
  settings: WorkerSettings,
  signal: AbortSignal,
  tally: BatchTally,
): Promise<{ verdict: RecordVerdict } | { call: Call }> {
  if (job === undefined) throw new PipelineError('UNKNOWN_JOB', `No job ${message.jobId} in the ledger.`);
  if (await ports.ledger.isRecordDone(job.jobId, message.lineNumber)) {
    return { verdict: { kind: 'done', status: 'already-done' } };
  }
  const catalog = settings.catalog ?? defaultCatalog;
  const record = await readRecord(message, ports, catalog);
  const subject = {
    recordId: message.recordId,
    lineNumber: message.lineNumber,
    family: record.ok ? record.record.family : record.error.family,
    ...(record.ok && record.record.family === 'bedrock' ? { modelInput: record.record.body } : {}),
  };
  const finishNow = async (outcome: RecordOutcome) => ({
    verdict: await finish(ports, tally, job, { subject, outcome, attempts: 0, now: settings.clock.now() }),
  });
  if (job.cancelRequested) return finishNow({ status: 'canceled' });
  if (!record.ok)
    return finishNow(erroredOutcome(new PipelineError(record.error.code, record.error.message)));
  let invocation: Invocation;
  try {
    invocation = buildInvocation(record.record, job.settings, catalog);
  } catch (error) {
    if (error instanceof PipelineError) return finishNow(erroredOutcome(error));
    throw error;
  }
  const calibrationKey = `${job.jobId}#${invocation.modelId}`;
  const counted =
    invocation.estimate.upper > settings.countTokensAbove || invocation.longContext
      ? await countInput(ports.model, invocation, signal)
      : undefined;
  const input = settings.reservations.inputTokens(calibrationKey, invocation.estimate, counted);
  return {
    call: {
      message,
      job,
      subject,
      invocation,
      budgetKey: `${invocation.resolved.region}#${invocation.modelId}`,
      calibrationKey,
      tokens: settings.reservations.tokensToReserve(calibrationKey, input, invocation.maxTokens),
    },
  };
}

/**
 * The calls of one budget: one reservation for them all, each call waiting in this invocation until its
 * tokens are there, and one settlement to what Bedrock charged, whatever happened in between. Calls the
 * budget cannot start before the deadline go back to the queue to wait.
 */
async function callWithin(
  budgetKey: string,
  calls: readonly Call[],
  ports: WorkerPorts,
  settings: WorkerSettings,
  deadline: BatchDeadline,
  tally: BatchTally,
): Promise<Array<[Call, RecordVerdict]>> {
  const { clock } = settings;
  const reservation = await ports.budget.reserve(
    budgetKey,
    calls.map((call) => call.tokens),
    deadline.latestStart,
  );
  const granted = calls.slice(0, reservation.startAts.length);
  const later = calls.slice(granted.length);
  const laterWaitMs = Math.max(0, (reservation.retryAt ?? clock.now()) - clock.now());
  for (const call of later) tally.retried(call.job.jobId, { budgetWaits: 1 });
  const waiting = later.map((call): [Call, RecordVerdict] => [
    call,
    { kind: 'wait', cause: 'budget', delaySeconds: waitSeconds(laterWaitMs, settings) },
  ]);
  if (granted.length === 0) return waiting;

  const outcomes: CallOutcome[] = [];
  try {
    outcomes.push(
      ...(await Promise.all(
        granted.map(async (call, index) => {
          const startAt = reservation.startAts[index] ?? clock.now();
          const waitedMs = Math.max(0, startAt - clock.now());
          if (waitedMs > 0) tally.retried(call.job.jobId, { budgetWaits: 1 });
          const outcome = await startThenCall(call, startAt, ports, settings, deadline.signal, tally);
          return outcome.verdict.kind === 'done' && waitedMs > 0
            ? { ...outcome, verdict: { ...outcome.verdict, waitedMs } }
            : outcome;
        }),
      )),
    );
  } finally {
    await ports.budget.settle(reservation, sumOf(outcomes.map((outcome) => outcome.charged)));
  }
  await reportQuotaFailures(budgetKey, outcomes, ports.budget, settings);
  return [
    ...granted.map((call, index): [Call, RecordVerdict] => [
      call,
      outcomes[index]?.verdict ?? { kind: 'unhandled', error: new Error('the call got no outcome') },
    ]),
    ...waiting,
  ];
}

/** Waits for the call's tokens, then calls; a deadline that comes first leaves the call for a later attempt. */
async function startThenCall(
  call: Call,
  startAt: number,
  ports: WorkerPorts,
  settings: WorkerSettings,
  signal: AbortSignal,
  tally: BatchTally,
): Promise<CallOutcome> {
  try {
    await settings.clock.sleepUntil(startAt, signal);
  } catch (error) {
    return { verdict: { kind: 'retry', delaySeconds: 1, failure: classifyFailure(error) }, charged: 0 };
  }
  return callModel(call, ports, settings, signal, tally);
}

/** One call: lease, Bedrock, result. Unexpected errors become an unhandled verdict, never a lost settlement. */
async function callModel(
  call: Call,
  ports: WorkerPorts,
  settings: WorkerSettings,
  signal: AbortSignal,
  tally: BatchTally,
): Promise<CallOutcome> {
  try {
    const { job, message } = call;
    const lease = await ports.ledger.leaseRecord(
      job.jobId,
      message.lineNumber,
      settings.owner,
      settings.leaseSeconds,
    );
    if (lease.kind === 'held') {
      return {
        verdict: { kind: 'retry', delaySeconds: settings.heldRetrySeconds ?? 30, failure: undefined },
        charged: 0,
      };
    }
    if (lease.kind === 'done') return { verdict: { kind: 'done', status: 'already-done' }, charged: 0 };
    // Only a lease holder stores a result, so only a later attempt can find one (its holder stopped before
    // counting it): adopt it instead of calling again.
    const stored =
      lease.attempt > 1 ? await readStoredResult(ports.store, job, message.lineNumber) : undefined;
    if (stored !== undefined) {
      tally.completed(job.jobId, stored.completion);
      return {
        verdict: { kind: 'done', status: stored.outcome.status, completion: stored.completion },
        charged: 0,
      };
    }
    return await invoke(call, lease.attempt, ports, settings, signal, tally);
  } catch (error) {
    return { verdict: { kind: 'unhandled', error }, charged: call.tokens };
  }
}

async function invoke(
  call: Call,
  attempt: number,
  ports: WorkerPorts,
  settings: WorkerSettings,
  signal: AbortSignal,
  tally: BatchTally,
): Promise<CallOutcome> {
  const { invocation, job, subject } = call;
  const calledAt = settings.clock.now();
  let response: MessagesResponse;
  try {
    response = await ports.model.invoke(invocation.modelId, invocation.bodyJson, signal);
  } catch (error) {
    return afterFailure(call, attempt, classifyFailure(error), ports, settings, tally);
  }
  const usage = usageOf(response);
  settings.reservations.learn(call.calibrationKey, invocation.estimate, usage);
  const model = { modelId: invocation.modelId, latencyMs: settings.clock.now() - calledAt };
  const verdict = await finish(ports, tally, job, {
    subject,
    outcome: { status: 'succeeded', response },
    billing: { usage, resolved: invocation.resolved },
    attempts: attempt,
    model,
    now: settings.clock.now(),
  });
  const charged =
    usage.input_tokens +
    (usage.cache_creation_input_tokens ?? 0) +
    usage.output_tokens * settings.outputBurndown;
  return { verdict: { ...verdict, model }, charged };
}

/** A failed call through the failure table: wait for the daily quota, try again later, or an error result. */
async function afterFailure(
  call: Call,
  attempt: number,
  failure: Failure,
  ports: WorkerPorts,
  settings: WorkerSettings,
  tally: BatchTally,
): Promise<CallOutcome> {
  const { job, message } = call;
  // Bedrock charges nothing for a call it answered with an error; a call that got no answer may have run.
  const charged = failure.answered ? 0 : call.tokens;
  if (failure.dailyQuota) {
    await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, 'uncounted');
    tally.retried(job.jobId, { budgetWaits: 1 });
    const delaySeconds = settings.policy.dailyQuotaWaitSeconds;
    return { verdict: { kind: 'wait', cause: 'daily-quota', delaySeconds }, charged, failure };
  }
  const decision = decideRetry(failure, attempt, settings.policy, settings.random);
  if (decision.action === 'give-up') {
    const suffix = failure.retry === 'never' ? '' : ` (gave up: ${decision.reason})`;
    const outcome: RecordOutcome = {
      status: 'errored',
      failure: { ...failure, message: `${failure.message}${suffix}` },
    };
    const verdict = await finish(ports, tally, job, {
      subject: call.subject,
      outcome,
      attempts: attempt,
      now: settings.clock.now(),
    });
    return { verdict, charged, failure };
  }
  await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner);
  tally.retried(job.jobId, { retried: 1, bedrockThrottles: failure.throttle ? 1 : 0 });
  return { verdict: { kind: 'retry', delaySeconds: decision.delaySeconds, failure }, charged, failure };
}

/** Tells the budget what Bedrock's refusals mean: someone else spends the quota, or the day's quota is gone. */
async function reportQuotaFailures(
  budgetKey: string,
  outcomes: readonly CallOutcome[],
  budget: TokenBudget,
  settings: WorkerSettings,
): Promise<void> {
  if (outcomes.some((outcome) => outcome.failure?.throttle === true)) await budget.recordThrottle(budgetKey);
  if (outcomes.some((outcome) => outcome.failure?.dailyQuota === true)) {
    await budget.pauseUntil(budgetKey, settings.clock.now() + settings.policy.dailyQuotaWaitSeconds * 1000);
  }
}

/** Stores the record's result (or adopts the one stored first) and adds it to the batch's tally. */
async function finish(
  ports: WorkerPorts,
  tally: BatchTally,
  job: JobRecord,
  finished: {
    subject: StoredResult['subject'];
    outcome: RecordOutcome;
    attempts: number;
    now: number;
    billing?: Parameters<typeof completionOf>[3];
    model?: { modelId: string; latencyMs: number };
  },
): Promise<RecordVerdict & { kind: 'done' }> {
  const { subject, outcome, billing, model } = finished;
  const stored = await storeResult(ports.store, job, {
    subject,
    outcome,
    completion: completionOf(subject.lineNumber, subject.family, outcome, billing),
    timing: { finishedAt: new Date(finished.now).toISOString(), attempts: finished.attempts, ...model },
  });
  tally.completed(job.jobId, stored.completion);
  return { kind: 'done', status: stored.outcome.status, completion: stored.completion };
}

/** A done verdict for a record the ledger did not count (a redelivery counted it first) says so. */
function counting(
  verdict: RecordVerdict | undefined,
  message: RecordMessage,
  counted: readonly { jobId: string; lineNumber: number }[],
): RecordVerdict {
  if (verdict === undefined) return { kind: 'unhandled', error: new Error('the record got no verdict') };
  if (verdict.kind !== 'done' || verdict.completion === undefined) return verdict;
  const wasCounted = counted.some(
    (record) => record.jobId === message.jobId && record.lineNumber === message.lineNumber,
  );
  return wasCounted ? verdict : { kind: 'done', status: 'already-done' };
}

/** Finished records and retries of one batch, per job: what the ledger counts in one transaction. */
class BatchTally {
  private readonly jobs = new Map<
    string,
    { completions: Map<number, RecordCompletion>; retries: JobRetries }
  >();

  completed(jobId: string, completion: RecordCompletion): void {
    // A message delivered twice in one batch is one record: counted once.
    const entry = this.entry(jobId);
    if (!entry.completions.has(completion.lineNumber))
      entry.completions.set(completion.lineNumber, completion);
  }

  retried(jobId: string, retries: Partial<JobRetries>): void {
    const entry = this.entry(jobId);
    entry.retries = {
      retried: entry.retries.retried + (retries.retried ?? 0),
      bedrockThrottles: entry.retries.bedrockThrottles + (retries.bedrockThrottles ?? 0),
      budgetWaits: entry.retries.budgetWaits + (retries.budgetWaits ?? 0),
    };
  }

  updates(): JobUpdate[] {
    return [...this.jobs].map(([jobId, { completions, retries }]) => ({
      jobId,
      completions: [...completions.values()],
      retries,
    }));
  }

  private entry(jobId: string) {
    let entry = this.jobs.get(jobId);
    if (entry === undefined) {
      entry = { completions: new Map(), retries: NO_RETRIES };
      this.jobs.set(jobId, entry);
    }
    return entry;
  }
}

/** A wait as an SQS delay: spread by up to a quarter so records sent back together do not return together. */
function waitSeconds(waitMs: number, settings: WorkerSettings): number {
  const jitter = 1 + 0.25 * (settings.random ?? Math.random)();
  return Math.min(900, Math.max(1, Math.ceil((waitMs / 1000) * jitter)));
}

/** The input tokens Bedrock will count, asked of CountTokens; unknown when it cannot say (estimates then do). */
async function countInput(model: ModelInvoker, invocation: Invocation, signal: AbortSignal) {
  try {
    return await model.countTokens(invocation.resolved.model.bedrockId, invocation.bodyJson, signal);
  } catch {
    return undefined;
  }
}

function erroredOutcome(error: PipelineError): RecordOutcome {
  return { status: 'errored', failure: classifyFailure(error) };
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

function sumOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0);
}
