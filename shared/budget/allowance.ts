import type { Clock } from '../pipeline/clock.ts';

/** Tokens of a reservation and when they are in the bucket, as the budget granted them. */
export interface Arrival {
  readonly at: number;
  readonly tokens: number;
}

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

  private readonly arrivals: Arrival[];

  /** `kept` of the share is never lent to a call: room the batch keeps back. */
  constructor(
    arrivals: readonly Arrival[],
    private readonly clock: Clock,
    kept = 0,
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
      // Arrivals all come before the batch's deadline, so this sleep ends in time without the deadline's signal.
      const stop = new AbortController();
      const sleeping = this.clock.sleepUntil(next.at, stop.signal).catch(() => {});
      await Promise.race([sleeping, changed]);
      stop.abort();
    }
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
