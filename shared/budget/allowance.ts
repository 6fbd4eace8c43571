import type { Clock } from '../core/clock.ts';

/** Tokens of a reservation and when they are in the bucket, as the budget granted them. */
export interface Arrival {
  readonly at: number;
  readonly tokens: number;
}

/**
 * When every token taken from the shared budget so far may be spent, as the budget stands now: a grant's
 * tokens are there by then at the latest, and sooner than it was told when other batches gave tokens back
 * since. Undefined when the budget cannot say.
 */
export type SpendableFrom = () => Promise<number | undefined>;

/**
 * A share whose last arrival is further off than this asks the budget, at most once a period while it waits,
 * whether tokens given back since its grant bring its arrivals forward: given back, they would otherwise only
 * go to a batch granted later, and at the end of a job there is none.
 */
export const BRING_FORWARD_CHECK_MS = 500;

/** The budget's moments are sums of fractions of a millisecond: two within this are one. */
const SAME_MOMENT_MS = 1;

/**
 * One batch's share of the shared budget, as it arrives, and what its calls hold of it. A running call holds
 * at least what Bedrock reserves for it (input plus max_tokens); once it ends it holds only what Bedrock
 * charged, and the difference is free for the batch's next call at once. So a batch spends its share at the
 * pace of real charges, while its calls never hold less than Bedrock counts against the quota for them.
 */
export class BatchAllowance {
  private held = 0;
  private running = 0;
  private changed = signalled();
  private nextCheckAt = Number.NEGATIVE_INFINITY;
  private grantedAfter = false;

  private readonly arrivals: Arrival[];

  /**
   * `kept` of the share is never lent to a call: room the batch keeps back. With `spendableFrom`, arrivals
   * that tokens given back to the budget have made early are brought forward (see BRING_FORWARD_CHECK_MS).
   */
  constructor(
    arrivals: readonly Arrival[],
    private readonly clock: Clock,
    kept = 0,
    private readonly spendableFrom?: SpendableFrom,
  ) {
    this.arrivals = [...arrivals];
    this.held = kept;
  }

  /**
   * Waits until the share can hold `tokens` more, then holds them for a call. When no more of the share will
   * arrive and no running call will free any, it says instead how many tokens the share is short: answers
   * cost more than expected, or one call needs more than the whole share.
   */
  async hold(tokens: number, signal: AbortSignal): Promise<{ readonly short: number } | undefined> {
    for (;;) {
      // Checked at each turn: a deadline that passes ends the wait before the call starts.
      signal.throwIfAborted();
      const now = this.clock.now();
      const arrived = this.arrivedBy(now);
      if (this.held + tokens <= arrived) {
        this.held += tokens;
        this.running += 1;
        return undefined;
      }
      const next = this.arrivals.find((arrival) => arrival.at > now);
      if (next === undefined && this.running === 0) return { short: this.held + tokens - arrived };
      const changed = this.changed.promise;
      if (next === undefined) {
        await changed;
        continue;
      }
      const checking = this.checksBudget(now);
      if (checking && now >= this.nextCheckAt) {
        await this.bringForward(now);
        continue;
      }
      // Arrivals all come before the batch's deadline, so this sleep ends in time without the deadline's signal.
      const wakeAt = checking ? Math.min(next.at, this.nextCheckAt) : next.at;
      const stop = new AbortController();
      const sleeping = this.clock.sleepUntil(wakeAt, stop.signal).catch(() => {});
      await Promise.race([sleeping, changed]);
      stop.abort();
    }
  }

  /** Keeps `tokens` more of the share back from the calls still to start. */
  keep(tokens: number): void {
    this.held += tokens;
  }

  /** More of the budget for the batch: a top-up when it was short. */
  extend(arrival: Arrival): void {
    this.arrivals.push(arrival);
  }

  /** A call ended: of the `held` tokens it held, it keeps `charged`. */
  release(held: number, charged: number): void {
    this.held -= held - charged;
    this.running -= 1;
    this.changed.resolve();
    this.changed = signalled();
  }

  /** Whether a grant made after this share stands behind it, as far as the share has asked the budget. */
  get followed(): boolean {
    return this.grantedAfter;
  }

  /**
   * Whether no grant made after this share stands behind it, as the budget says now (false when it cannot
   * say): what this batch's calls owe Bedrock when they end would then land on no one else's calls.
   */
  async alone(): Promise<boolean> {
    if (this.spendableFrom === undefined || this.grantedAfter) return false;
    return (await this.bringForward(this.clock.now())) && !this.grantedAfter;
  }

  /** Whether a wait asks the budget, now and then, to bring the share's arrivals forward. */
  private checksBudget(now: number): boolean {
    return (
      this.spendableFrom !== undefined &&
      !this.grantedAfter &&
      this.lastArrivalAt() - now > BRING_FORWARD_CHECK_MS
    );
  }

  private lastArrivalAt(): number {
    return Math.max(...this.arrivals.map((arrival) => arrival.at));
  }

  /**
   * Arrivals later than the moment the budget can let all it granted be spent come then instead. Once a
   * grant made after this share stands behind it, tokens given back go to that one, and the share stops asking.
   * False when the budget could not say.
   */
  private async bringForward(now: number): Promise<boolean> {
    this.nextCheckAt = now + BRING_FORWARD_CHECK_MS;
    const from = await this.spendableFrom?.().catch(() => undefined);
    if (from === undefined) return false;
    if (from > this.lastArrivalAt() + SAME_MOMENT_MS) {
      this.grantedAfter = true;
      return true;
    }
    const earlier = Math.max(0, this.lastArrivalAt() - from);
    this.arrivals.forEach((arrival, index) => {
      if (arrival.at > now) this.arrivals[index] = { ...arrival, at: Math.max(now, arrival.at - earlier) };
    });
    return true;
  }

  private arrivedBy(time: number): number {
    return this.arrivals.reduce((sum, arrival) => sum + (arrival.at <= time ? arrival.tokens : 0), 0);
  }
}

/** A promise and the function that resolves it. */
function signalled(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
