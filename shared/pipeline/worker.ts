import { BatchAllowance } from '../budget/allowance.ts';
import type { CallCost, ReservationEstimator } from '../budget/reservation-estimate.ts';
import { type Catalog, defaultCatalog } from '../catalog/catalog.ts';
import type { TokenUsage } from '../cost/cost.ts';
import { InputChangedError, PipelineError } from '../errors.ts';
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
  CountedRecord,
  JobRecord,
  JobRetries,
  JobUpdate,
  LeaseResult,
  RecordCompletion,
  StoredResult,
} from './model.ts';
import type { ModelInvoker, TokenBudget } from './ports.ts';

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
  /** What calls cost the quota, learnt from the calls answered so far (it outlives one invocation). */
  readonly reservations: ReservationEstimator;
  /** The quota the budget spends, in tokens per minute: how many calls a batch runs at once follows from it. */
  readonly tokensPerMinute: number;
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

/** What every step of one batch shares. */
interface Batch {
  readonly ports: WorkerPorts;
  readonly settings: WorkerSettings;
  readonly deadline: BatchDeadline;
  readonly tally: BatchTally;
  readonly size: number;
}

/** A record ready to call Bedrock: its body, its budget and what it costs the quota. */
interface Call {
  readonly message: RecordMessage;
  readonly job: JobRecord;
  readonly subject: StoredResult['subject'];
  readonly invocation: Invocation;
  /** The shared budget it spends from: region and model id, as Bedrock keeps quotas. */
  readonly budgetKey: string;
  /** Where the estimator learns and looks up this job's calls to this model. */
  readonly calibrationKey: string;
  readonly cost: CallCost;
}

type AcquiredLease = LeaseResult & { kind: 'acquired' };

interface CallOutcome {
  readonly verdict: RecordVerdict;
  /** What Bedrock charged the quota for the call (the expected charge, when that is unknown). */
  readonly charged: number;
  readonly failure?: Failure;
}

/**
 * A batch of records from the queue to their verdicts. Records that need no call (done, broken, cancelled)
 * finish at once. The rest reserve from the shared budget together, one reservation per budget, and start
 * in this invocation as their tokens arrive; calls the budget cannot start before the batch's deadline go
 * back to the queue with a delay, which is not a failure. Each call takes its record's lease, calls Bedrock
 * and stores its result; every failure goes through the failure table. Every reservation is settled to what
 * Bedrock charged, and the batch's records and retries are counted in the ledger in one transaction.
 */
export async function processBatch(
  messages: readonly RecordMessage[],
  ports: WorkerPorts,
  settings: WorkerSettings,
  deadline: BatchDeadline,
): Promise<RecordVerdict[]> {
  const batch: Batch = { ports, settings, deadline, tally: new BatchTally(), size: messages.length };
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
        const prepared = await prepare(message, await jobOf(message.jobId), batch);
        if ('verdict' in prepared) verdicts.set(message, prepared.verdict);
        else calls.push(prepared.call);
      } catch (error) {
        verdicts.set(message, { kind: 'unhandled', error });
      }
    }),
  );
  const byBudget = new Map<string, Call[]>();
  for (const call of calls) byBudget.set(call.budgetKey, [...(byBudget.get(call.budgetKey) ?? []), call]);
  await Promise.all(
    [...byBudget].map(async ([budgetKey, group]) => {
      for (const [call, verdict] of await callWithin(budgetKey, group, batch))
        verdicts.set(call.message, verdict);
    }),
  );
  const counted = await countInLedger(ports, batch.tally.updates());
  return messages.map((message) => counting(verdicts.get(message), message, counted));
}

/** Reads the record and decides what it needs: nothing (done), a result without a call, or a call. */
async function prepare(
  message: RecordMessage,
  job: JobRecord | undefined,
  batch: Batch,
): Promise<{ verdict: RecordVerdict } | { call: Call }> {
  const { ports, settings } = batch;
  if (job === undefined) throw new PipelineError('UNKNOWN_JOB', `No job ${message.jobId} in the ledger.`);
  if (await ports.ledger.isRecordDone(job.jobId, message.lineNumber)) {
    return { verdict: { kind: 'done', status: 'already-done' } };
  }
  const catalog = settings.catalog ?? defaultCatalog;
  let record: LineResult;
  try {
    record = await readRecord(message, ports, catalog);
  } catch (error) {
    if (!(error instanceof InputChangedError)) throw error;
    const subject = { recordId: message.recordId, lineNumber: message.lineNumber, family: undefined };
    return { verdict: await finish(batch, job, { subject, outcome: erroredOutcome(error), attempts: 0 }) };
  }
  const subject = {
    recordId: message.recordId,
    lineNumber: message.lineNumber,
    family: record.ok ? record.record.family : record.error.family,
    ...(record.ok && record.record.family === 'bedrock' ? { modelInput: record.record.body } : {}),
  };
  const finishNow = async (outcome: RecordOutcome) => ({
    verdict: await finish(batch, job, { subject, outcome, attempts: 0 }),
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
      ? await countInput(ports.model, invocation, batch.deadline.signal)
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
      cost: settings.reservations.costOf(calibrationKey, input, invocation.maxTokens, batch.size),
    },
  };
}

/**
 * The calls of one budget, in one reservation (see `shareOf`). Calls the budget cannot start before the
 * deadline go back to the queue to wait. The others start in order as the batch's share arrives and as
 * ended calls free what they held beyond their charge; a share that answers overran is topped up. Whatever
 * happens, the batch's reservations are settled, together, to what Bedrock charged.
 */
async function callWithin(
  budgetKey: string,
  calls: readonly Call[],
  batch: Batch,
): Promise<Array<[Call, RecordVerdict]>> {
  const { ports, settings, deadline } = batch;
  const { tokens, kept } = shareOf(calls, settings);
  const reservation = await ports.budget.reserve(budgetKey, tokens, deadline.latestStart);
  const granted = calls.slice(0, reservation.startAts.length);
  const share = {
    allowance: new BatchAllowance(
      reservation.startAts.map((at, index) => ({ at, tokens: tokens[index] ?? 0 })),
      settings.clock,
      kept,
    ),
    taken: reservation.tokens,
    grantedAt: settings.clock.now(),
  };
  const started: Array<{ call: Call; ended: Promise<CallOutcome> }> = [];
  let notStarted: RecordVerdict | undefined =
    granted.length < calls.length ? waitFor(reservation.retryAt, batch) : undefined;
  try {
    for (const call of granted) {
      const start = await startWithin(share, call, budgetKey, batch);
      if ('ended' in start) started.push({ call, ended: start.ended });
      else {
        notStarted = start.verdict;
        break;
      }
    }
  } finally {
    const outcomes = await Promise.all(started.map(({ ended }) => ended));
    if (share.taken > 0) {
      await ports.budget.settle(
        { key: budgetKey, tokens: share.taken, startAts: [], retryAt: undefined },
        sumOf(outcomes.map((outcome) => outcome.charged)),
      );
    }
  }
  const outcomes = await Promise.all(started.map(({ ended }) => ended));
  await reportQuotaFailures(budgetKey, outcomes, batch);
  const verdicts = new Map(started.map(({ call }, index) => [call, outcomes[index]?.verdict]));
  return calls.map((call): [Call, RecordVerdict] => {
    const verdict = verdicts.get(call) ?? notStarted ?? waitFor(undefined, batch);
    if (verdict.kind === 'wait' && !verdicts.has(call))
      batch.tally.retried(call.job.jobId, { budgetWaits: 1 });
    return [call, verdict];
  });
}

/** A call that could not start in this invocation goes back to the queue until its tokens can be there. */
function waitFor(retryAt: number | undefined, batch: Batch): RecordVerdict {
  const waitMs = Math.max(0, (retryAt ?? batch.deadline.latestStart) - batch.settings.clock.now());
  return { kind: 'wait', cause: 'budget', delaySeconds: waitSeconds(waitMs, batch.settings) };
}

/** Calls of one batch whose answers may be on their way back at once: see `shareOf`. */
const CALLS_IN_TRANSIT = 2;

/** What a call holds of its batch's share until its answer is in: at least what Bedrock reserves for it. */
function holdOf(call: Call): number {
  return Math.max(call.cost.reserved, call.cost.charge);
}

/**
 * What a batch's calls take from the budget, call by call, and what of it the batch keeps back. Each call
 * takes what Bedrock is expected to charge; the first also takes headroom for the calls that run at once
 * (what Bedrock reserves beyond the charge, enough of them to spend the quota at the latency seen), and room
 * the batch keeps back for answers on their way: Bedrock settles a call's charge, which may be more than the
 * call held, a little before its answer reaches the worker.
 */
function shareOf(calls: readonly Call[], settings: WorkerSettings): { tokens: number[]; kept: number } {
  const [first] = calls;
  if (first === undefined) return { tokens: [], kept: 0 };
  const charges = calls.map((call) => call.cost.charge);
  const inFlight = settings.reservations.callsInFlight(
    first.calibrationKey,
    settings.tokensPerMinute,
    sumOf(charges) / charges.length,
    calls.length,
  );
  const headroom = inFlight * Math.max(0, ...calls.map((call) => call.cost.reserved - call.cost.charge));
  const kept = CALLS_IN_TRANSIT * Math.max(0, ...calls.map((call) => call.cost.ceiling - holdOf(call)));
  return { tokens: charges.map((charge, index) => (index === 0 ? charge + headroom + kept : charge)), kept };
}

/**
 * Waits until the batch's share can hold the call, topping the share up when it falls short, then starts
 * the call without waiting for it to end. A deadline that comes first leaves the call for a later attempt;
 * a top-up that cannot arrive in time sends it back to wait.
 */
async function startWithin(
  share: { allowance: BatchAllowance; taken: number; grantedAt: number },
  call: Call,
  budgetKey: string,
  batch: Batch,
): Promise<{ ended: Promise<CallOutcome> } | { verdict: RecordVerdict }> {
  const { ports, settings, deadline } = batch;
  const holds = holdOf(call);
  try {
    for (let shortfall = await share.allowance.hold(holds, deadline.signal); shortfall !== undefined; ) {
      const topUp = await ports.budget.reserve(budgetKey, [shortfall.short], deadline.latestStart);
      const [at] = topUp.startAts;
      if (at === undefined) return { verdict: waitFor(topUp.retryAt, batch) };
      share.taken += topUp.tokens;
      share.allowance.extend({ at, tokens: topUp.tokens });
      shortfall = await share.allowance.hold(holds, deadline.signal);
    }
  } catch (error) {
    return { verdict: { kind: 'retry', delaySeconds: 1, failure: classifyFailure(error) } };
  }
  const waitedMs = settings.clock.now() - share.grantedAt;
  if (waitedMs > 0) batch.tally.retried(call.job.jobId, { budgetWaits: 1 });
  const ended = callModel(call, batch).then((outcome) => {
    // A throttle says Bedrock has less than this batch was counting on: what the call held stays held, so
    // the batch's next calls do not follow it into the same wall.
    share.allowance.release(holds, outcome.failure?.throttle === true ? holds : outcome.charged);
    return outcome.verdict.kind === 'done' && waitedMs > 0
      ? { ...outcome, verdict: { ...outcome.verdict, waitedMs } }
      : outcome;
  });
  return { ended };
}

/** One call: lease, Bedrock, result. Unexpected errors become an unhandled verdict, never a lost settlement. */
async function callModel(call: Call, batch: Batch): Promise<CallOutcome> {
  const { ports, settings, tally } = batch;
  try {
    const { job, message } = call;
    const lease = await ports.ledger.leaseRecord(
      job.jobId,
      message.lineNumber,
      settings.owner,
      settings.leaseSeconds,
    );
    if (lease.kind === 'held') {
      const verdict = {
        kind: 'retry',
        delaySeconds: settings.heldRetrySeconds ?? 30,
        failure: undefined,
      } as const;
      return { verdict, charged: 0 };
    }
    if (lease.kind === 'done') return { verdict: { kind: 'done', status: 'already-done' }, charged: 0 };
    // Only a lease holder stores a result, so only a later attempt can find one (its holder stopped before
    // counting it): adopt it instead of calling again.
    const stored =
      lease.attempt > 1 ? await readStoredResult(ports.store, job, message.lineNumber) : undefined;
    if (stored !== undefined) {
      tally.completed(job.jobId, stored.completion);
      const verdict = { kind: 'done', status: stored.outcome.status, completion: stored.completion } as const;
      return { verdict, charged: 0 };
    }
    return await invoke(call, lease, batch);
  } catch (error) {
    return { verdict: { kind: 'unhandled', error }, charged: call.cost.charge };
  }
}

async function invoke(call: Call, lease: AcquiredLease, batch: Batch): Promise<CallOutcome> {
  const { ports, settings, deadline } = batch;
  const { invocation, job, subject } = call;
  const calledAt = settings.clock.now();
  let response: MessagesResponse;
  try {
    response = await ports.model.invoke(invocation.modelId, invocation.bodyJson, deadline.signal);
  } catch (error) {
    return afterFailure(call, lease, classifyFailure(error), batch);
  }
  const usage = usageOf(response);
  const model = { modelId: invocation.modelId, latencyMs: settings.clock.now() - calledAt };
  settings.reservations.learn(call.calibrationKey, invocation.estimate, usage, model.latencyMs);
  const verdict = await finish(batch, job, {
    subject,
    outcome: { status: 'succeeded', response },
    billing: { usage, resolved: invocation.resolved },
    attempts: lease.attempt,
    model,
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
  lease: AcquiredLease,
  failure: Failure,
  batch: Batch,
): Promise<CallOutcome> {
  const { ports, settings, tally } = batch;
  const { job, message } = call;
  // Bedrock charges nothing for a call it answered with an error; a call that got no answer may have run.
  const charged = failure.answered ? 0 : call.cost.charge;
  if (failure.dailyQuota) {
    await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, { waited: true });
    tally.retried(job.jobId, { budgetWaits: 1 });
    const delaySeconds = settings.policy.dailyQuotaWaitSeconds;
    return { verdict: { kind: 'wait', cause: 'daily-quota', delaySeconds }, charged, failure };
  }
  const count = { attempt: lease.attempt, ofClass: (lease.failures[failure.retry] ?? 0) + 1 };
  const decision = decideRetry(failure, count, settings.policy, settings.random);
  if (decision.action === 'give-up') {
    const suffix = failure.retry === 'never' ? '' : ` (gave up: ${decision.reason})`;
    const outcome: RecordOutcome = {
      status: 'errored',
      failure: { ...failure, message: `${failure.message}${suffix}` },
    };
    return {
      verdict: await finish(batch, job, { subject: call.subject, outcome, attempts: lease.attempt }),
      charged,
      failure,
    };
  }
  await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, { failed: failure.retry });
  tally.retried(job.jobId, { retried: 1, bedrockThrottles: failure.throttle ? 1 : 0 });
  return { verdict: { kind: 'retry', delaySeconds: decision.delaySeconds, failure }, charged, failure };
}

/** Tells the budget what Bedrock's refusals mean: someone else spends the quota, or the day's quota is gone. */
async function reportQuotaFailures(budgetKey: string, outcomes: readonly CallOutcome[], batch: Batch) {
  const { ports, settings } = batch;
  if (outcomes.some((outcome) => outcome.failure?.throttle === true))
    await ports.budget.recordThrottle(budgetKey);
  if (outcomes.some((outcome) => outcome.failure?.dailyQuota === true)) {
    await ports.budget.pauseUntil(
      budgetKey,
      settings.clock.now() + settings.policy.dailyQuotaWaitSeconds * 1000,
    );
  }
}

/** Stores the record's result (or adopts the one stored first) and adds it to the batch's tally. */
async function finish(
  batch: Batch,
  job: JobRecord,
  finished: {
    subject: StoredResult['subject'];
    outcome: RecordOutcome;
    attempts: number;
    billing?: Parameters<typeof completionOf>[3];
    model?: { modelId: string; latencyMs: number };
  },
): Promise<RecordVerdict & { kind: 'done' }> {
  const { subject, outcome, billing, model } = finished;
  const stored = await storeResult(batch.ports.store, job, {
    subject,
    outcome,
    completion: completionOf(subject.lineNumber, subject.family, outcome, billing),
    timing: {
      finishedAt: new Date(batch.settings.clock.now()).toISOString(),
      attempts: finished.attempts,
      ...model,
    },
  });
  batch.tally.completed(job.jobId, stored.completion);
  return { kind: 'done', status: stored.outcome.status, completion: stored.completion };
}

/** A done verdict for a record the ledger did not count (a redelivery counted it first) says so. */
function counting(
  verdict: RecordVerdict | undefined,
  message: RecordMessage,
  counted: readonly CountedRecord[],
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
