import { BatchAllowance } from '../budget/allowance.ts';
import { MINUTE_MS } from '../budget/bucket.ts';
import { answerSeconds, type Catalog, catalogInUse } from '../catalog/catalog.ts';
import { classifyFailure } from '../failures.ts';
import type { Batch, Call, CallOutcome, RecordVerdict, WorkerSettings } from './batch.ts';
import { callModel } from './call-model.ts';
import { waitFor } from './verdicts.ts';

/** A batch's calls under the shared budget: one reservation, calls started as their share arrives, one settlement. */

/**
 * The calls of one budget, in one reservation (see `shareOf`). Calls the budget cannot start before the
 * deadline go back to the queue to wait. The others start in order as the batch's share arrives and as
 * ended calls free what they held beyond their charge; a share that answers overran is topped up. Whatever
 * happens, the batch's reservations are settled, together, to what Bedrock charged.
 */
export async function callWithin(
  budgetKey: string,
  calls: readonly Call[],
  batch: Batch,
  elsewhere?: Elsewhere,
): Promise<Array<[Call, RecordVerdict]>> {
  const { ports, settings, deadline } = batch;
  // The pool's own rate, as this worker last saw its bucket: pools of one file have quotas of their own.
  const rate = (await ports.budget.lastSeen(budgetKey))?.tokensPerMinute ?? settings.tokensPerMinute;
  const { tokens, kept } = shareOf(calls, settings, rate);
  const latestStart = Math.max(
    settings.clock.now(),
    deadline.latestStart - slowerTierMs(calls, settings.catalog ?? catalogInUse()),
  );
  const startBy = Math.min(latestStart, elsewhere?.startBy ?? Number.POSITIVE_INFINITY);
  const reservation = await ports.budget.reserve(budgetKey, tokens, startBy);
  const granted = calls.slice(0, reservation.startAts.length);
  // Calls this budget cannot start by then go to the other pools, in parallel with these.
  const placedElsewhere =
    elsewhere === undefined || granted.length === calls.length
      ? undefined
      : elsewhere.call(calls.slice(granted.length));
  const share: Share = {
    allowance: new BatchAllowance(
      reservation.startAts.map((at, index) => ({ at, tokens: tokens[index] ?? 0 })),
      settings.clock,
      kept,
      () => ports.budget.spendableFrom(budgetKey),
    ),
    taken: reservation.tokens,
    grantedAt: settings.clock.now(),
    tokensPerMinute: rate,
  };
  const started: Array<{ call: Call; ended: Promise<CallOutcome> }> = [];
  let notStarted: RecordVerdict | undefined =
    granted.length < calls.length && placedElsewhere === undefined
      ? waitFor(reservation.retryAt, batch)
      : undefined;
  const lastOfJob = lastCallsOfJob(share.allowance, granted);
  try {
    for (const call of granted) {
      const start = await startWithin(share, call, budgetKey, batch, await lastOfJob());
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
  const others = new Map(((await placedElsewhere) ?? []).map((pair) => [pair[0].message, pair]));
  return calls.map((call): [Call, RecordVerdict] => {
    const other = others.get(call.message);
    if (other !== undefined) return other;
    return [call, verdicts.get(call) ?? notStarted ?? waitFor(undefined, batch)];
  });
}

/**
 * How much longer than on default the slowest of the calls may take at the tier it asks for (flex answers
 * slower): its batch stops starting calls that much sooner, so that they end before the function does.
 */
function slowerTierMs(calls: readonly Call[], catalog: Catalog): number {
  const extra = calls.map(({ tier, invocation }) => {
    const onDefault = answerSeconds(invocation.resolved.model.latency, invocation.maxTokens) * 1000;
    return onDefault * Math.max(0, 1 / catalog.serviceTierOutputSpeed[tier] - 1);
  });
  return Math.max(0, ...extra);
}

/** Where calls this budget cannot start soon enough go instead: other quota pools. */
export interface Elsewhere {
  /** The latest the calls may start here: another pool could start them by then. */
  readonly startBy: number;
  call(calls: readonly Call[]): Promise<Array<[Call, RecordVerdict]>>;
}

/**
 * A call that starts this long after its batch's grant has waited for tokens, and is counted so: calls of a
 * batch start one after another within milliseconds, which is no wait.
 */
export const WAITED_FOR_TOKENS_MS = 1_000;

/**
 * Answers of one batch that may be on their way back at once, each charged up to the longest seen: room the
 * batch keeps for them. Room it keeps is room the job spends late, so one: a second overrun at the same
 * moment is rare, and a throttle it causes goes through the failure table.
 */
const CALLS_IN_TRANSIT = 1;

/**
 * What a call holds of its batch's share until its answer is in: at least what Bedrock reserves for it, and
 * what it is expected to be charged, which running calls of other batches may count on. One of its job's last
 * calls holds only the reservation (see `lastCallsOfJob`).
 */
function holdOf(call: Call, lastOfJob = false): number {
  return lastOfJob ? call.cost.reserved : Math.max(call.cost.reserved, call.cost.charge);
}

/**
 * Whether the batch's next call is one of its job's last: the batch carries the last line of its job's file,
 * and no other batch's grant stands behind this one in the budget (asked as the first call starts, and
 * learnt since while the batch waited for its share). Such calls start on what Bedrock reserves for them
 * rather than on what they will be charged: what they owe beyond it lands as they end, on no call when none
 * is behind them, while holding it back would leave the quota unspent as the job's last answers come.
 */
function lastCallsOfJob(allowance: BatchAllowance, calls: readonly Call[]): () => Promise<boolean> {
  const carriesLastLine = calls.some(
    ({ job, message }) => job.totalRecords !== undefined && message.lineNumber === job.readLine,
  );
  // An answer on its way back then owes its whole charge beyond the reservation: the room kept grows by that.
  const owedInTransit =
    CALLS_IN_TRANSIT * Math.max(0, ...calls.map((call) => holdOf(call) - holdOf(call, true)));
  let aloneAtFirst: Promise<boolean> | undefined;
  return async () => {
    if (!carriesLastLine) return false;
    aloneAtFirst ??= allowance.alone().then((alone) => {
      if (alone) allowance.keep(owedInTransit);
      return alone;
    });
    return (await aloneAtFirst) && !allowance.followed;
  };
}

/**
 * What a batch's calls take from the budget, call by call, and what of it the batch keeps back. Each call
 * takes what Bedrock is expected to charge; the first also takes headroom for the calls that run at once
 * (what Bedrock reserves beyond the charge, enough of them to spend the quota at the latency seen), and room
 * the batch keeps back for answers on their way: Bedrock settles a call's charge, which may be more than the
 * call held, a little before its answer reaches the worker.
 */
function shareOf(
  calls: readonly Call[],
  settings: WorkerSettings,
  tokensPerMinute: number,
): { tokens: number[]; kept: number } {
  const [first] = calls;
  if (first === undefined) return { tokens: [], kept: 0 };
  const charges = calls.map((call) => call.cost.charge);
  const inFlight = settings.reservations.callsInFlight(
    first.calibrationKey,
    tokensPerMinute,
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
  share: Share,
  call: Call,
  budgetKey: string,
  batch: Batch,
  lastOfJob: boolean,
  again = false,
): Promise<{ ended: Promise<CallOutcome> } | { verdict: RecordVerdict }> {
  const { ports, settings, deadline } = batch;
  const holds = holdOf(call, lastOfJob);
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
  const waited = waitedMs >= WAITED_FOR_TOKENS_MS;
  const ended = callModel(call, batch).then((outcome) => {
    // A throttle says Bedrock has less than this batch was counting on: what the call held stays held, so
    // the batch's next calls do not follow it into the same wall.
    share.allowance.release(holds, outcome.failure?.throttle === true ? holds : outcome.charged);
    const seen = waited ? { ...outcome, verdict: { ...outcome.verdict, waitedMs } } : outcome;
    const throttled = seen.verdict.kind === 'retry' && seen.failure?.throttle === true;
    // Only among a job's last calls: mid-job, a call made again before the budget knows of the throttle
    // spends what other batches count on, and meets the same wall.
    return throttled && lastOfJob && !again
      ? callAgain(share, call, budgetKey, batch, lastOfJob, seen)
      : seen;
  });
  return { ended };
}

/**
 * One of a job's last calls Bedrock throttled, made again in this invocation once Bedrock's bucket holds what
 * it reserves for the call again: a fraction of a second, where the queue's backoff and another receive take
 * seconds, and at a job's end no other call spends the quota meanwhile. The record's attempt was released as
 * the failure table says; the call again is a new attempt, under a new lease. Once a call: a second
 * throttle, or one with no time left, goes back through the queue. The budget is told at the batch's end, as
 * of any throttle.
 */
async function callAgain(
  share: Share,
  call: Call,
  budgetKey: string,
  batch: Batch,
  lastOfJob: boolean,
  throttled: CallOutcome,
): Promise<CallOutcome> {
  const { settings, deadline } = batch;
  const refilledAt = settings.clock.now() + (call.cost.reserved * MINUTE_MS) / share.tokensPerMinute;
  if (refilledAt > deadline.latestStart) return throttled;
  try {
    await settings.clock.sleepUntil(refilledAt, deadline.signal);
  } catch {
    return throttled;
  }
  const start = await startWithin(share, call, budgetKey, batch, lastOfJob, true);
  const outcome = 'ended' in start ? await start.ended : { verdict: start.verdict, charged: 0 };
  // Made again once only: the call this outcome tells of is the one after the throttle.
  const throttledHere = { calls: 1, pool: budgetKey };
  return {
    ...outcome,
    charged: throttled.charged + outcome.charged,
    verdict: { ...outcome.verdict, throttledHere },
  };
}

/** What a batch's calls share of one budget: its grant as it arrives, what it took, and the pool's rate. */
interface Share {
  readonly allowance: BatchAllowance;
  taken: number;
  readonly grantedAt: number;
  /** The pool's quota as the batch started: how soon Bedrock's bucket refills after a throttle. */
  readonly tokensPerMinute: number;
}

/** Tells the budget what Bedrock's refusals mean: someone else spends the quota, or the day's quota is gone. */
async function reportQuotaFailures(budgetKey: string, outcomes: readonly CallOutcome[], batch: Batch) {
  const { ports, settings } = batch;
  const throttled = (outcome: CallOutcome) =>
    outcome.failure?.throttle === true || outcome.verdict.throttledHere !== undefined;
  if (outcomes.some(throttled)) await ports.budget.recordThrottle(budgetKey);
  if (outcomes.some((outcome) => outcome.failure?.dailyQuota === true)) {
    await ports.budget.pauseUntil(
      budgetKey,
      settings.clock.now() + settings.policy.dailyQuotaWaitSeconds * 1000,
    );
  }
}

function sumOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0);
}
