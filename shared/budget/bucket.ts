/**
 * The arithmetic of the shared token budget, free of storage so it can be pinned with a fake clock.
 *
 * The budget for one region and model id mirrors Bedrock's per-minute quota: a bucket of one minute's tokens
 * that refills continuously. It is kept as one number, the moment the bucket will be full again (`fullAt`):
 * the level at any time follows from it, taking tokens moves it later by their refill time, and a charge
 * larger than the reservation moves it later still (debt). Because refill is implied by the clock, taking
 * tokens is a single add that needs no read, and reservations queue up in order: a caller that takes tokens
 * the bucket does not hold yet learns exactly when they will be there.
 */
export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/**
 * A take from a full bucket counts its refill from this long after it. The calls it is for reach Bedrock a
 * little later (a lease write, the request itself); until they do, Bedrock's bucket stays full and its
 * refill is lost, so ours must not count it either.
 */
export const FULL_BUCKET_LEAD_MS = 250;

export interface BucketState {
  /** Milliseconds since the epoch when the bucket is full again; at or before now, it is full. */
  readonly fullAt: number;
  /** The rate the pipeline spends at: the configured quota, or less after Bedrock throttled it (AIMD). */
  readonly tokensPerMinute: number;
  /** When the rate last changed. */
  readonly rateChangedAt: number;
  /** When Bedrock last throttled a call the bucket allowed; undefined when it never has. */
  readonly throttledAt?: number;
  /** The pool's daily quota, kept only where it runs out sooner than a day of the minute's (see dayBucketOf). */
  readonly day?: DayBucket;
}

/**
 * The daily quota as a second bucket, a day's tokens refilling over 24 hours, kept the same way (`fullAt`):
 * a call takes from both, and starts once both hold its tokens.
 */
export interface DayBucket {
  readonly fullAt: number;
  readonly tokensPerDay: number;
}

/** A full bucket at `tokensPerMinute`, with a full daily bucket where `tokensPerDay` needs one (see dayBucketOf). */
export function fullBucket(tokensPerMinute: number, now: number, tokensPerDay?: number): BucketState {
  const day = dayBucketOf({ tokensPerMinute, tokensPerDay }, now);
  return { fullAt: now, tokensPerMinute, rateChangedAt: now, ...(day === undefined ? {} : { day }) };
}

/**
 * The daily bucket of a pool, full at `fullAt`, or undefined when the daily quota can never run out first:
 * at a day's worth of the minute quota or more, it refills at least as fast as the minute bucket lets
 * anything be spent (Bedrock's default, 1,440 x the minute quota).
 */
export function dayBucketOf(
  rates: { readonly tokensPerMinute: number; readonly tokensPerDay?: number | undefined },
  fullAt: number,
): DayBucket | undefined {
  const { tokensPerDay, tokensPerMinute } = rates;
  if (tokensPerDay === undefined || tokensPerDay >= (tokensPerMinute * DAY_MS) / MINUTE_MS) return undefined;
  return { fullAt, tokensPerDay };
}

/** How long a bucket of `capacity` tokens a window takes to refill `tokens` (a minute's bucket by default). */
export function refillMs(tokens: number, capacity: number, windowMs = MINUTE_MS): number {
  return (tokens * windowMs) / capacity;
}

/** Tokens in the bucket at `now`: one minute's worth when full, below zero while in debt. */
export function levelAt(state: BucketState, now: number): number {
  return state.tokensPerMinute - (Math.max(0, state.fullAt - now) * state.tokensPerMinute) / MINUTE_MS;
}

export interface Takes {
  /** The bucket's `fullAt` after the takes. */
  readonly fullAt: number;
  /** The daily bucket's `fullAt` after the takes, where it is kept. */
  readonly dayFullAt?: number;
  /** When each take's tokens are in the bucket (and the daily one) and may be spent, in order. */
  readonly startAts: readonly number[];
}

/**
 * Takes each of `tokens` in turn at `now`. Each may be spent once the bucket holds it; a take larger than the
 * whole bucket may go when the bucket is full, as Bedrock lets a request that size go. Taken from a full
 * bucket, the tokens are there at once, but the refill that follows is counted from FULL_BUCKET_LEAD_MS on.
 * Where the daily quota is kept, each take also waits for the daily bucket to hold it.
 */
export function takeEach(state: BucketState, tokens: readonly number[], now: number): Takes {
  const minute = takeFromWindow(state.fullAt, state.tokensPerMinute, MINUTE_MS, tokens, now);
  if (state.day === undefined) return minute;
  const day = takeFromWindow(state.day.fullAt, state.day.tokensPerDay, DAY_MS, tokens, now);
  return {
    fullAt: minute.fullAt,
    dayFullAt: day.fullAt,
    startAts: minute.startAts.map((startAt, index) => Math.max(startAt, day.startAts[index] ?? startAt)),
  };
}

/** The bucket after `takes` (see takeEach). */
export function afterTakes(state: BucketState, takes: Takes): BucketState {
  const { day } = state;
  return {
    ...state,
    fullAt: takes.fullAt,
    ...(day === undefined || takes.dayFullAt === undefined
      ? {}
      : { day: { ...day, fullAt: takes.dayFullAt } }),
  };
}

/** `takeEach` on one bucket of `capacity` tokens a window. */
function takeFromWindow(
  fullAtBefore: number,
  capacity: number,
  windowMs: number,
  tokens: readonly number[],
  now: number,
): { fullAt: number; startAts: number[] } {
  const full = fullAtBefore <= now;
  let fullAt = full ? now : fullAtBefore;
  const startAts = tokens.map((amount) => {
    const from = fullAt;
    fullAt += refillMs(amount, capacity, windowMs);
    return Math.max(now, Math.min(from, fullAt - windowMs));
  });
  return { fullAt: full ? fullAt + FULL_BUCKET_LEAD_MS : fullAt, startAts };
}

/** How many of `tokens`, from the first, could be taken at `now` and all spent by `latestStart`. */
export function grantable(
  state: BucketState,
  tokens: readonly number[],
  now: number,
  latestStart: number,
): number {
  const { startAts } = takeEach(state, tokens, now);
  const late = startAts.findIndex((startAt) => startAt > latestStart);
  return late === -1 ? tokens.length : late;
}

/**
 * The latest `fullAt` a bucket may have for all of `tokens`, taken from it in turn, to be spendable by
 * `latestStart`: the condition of the one conditional write that takes them. The last take decides.
 */
export function latestFullAtToStartBy(
  tokens: readonly number[],
  capacity: number,
  latestStart: number,
  windowMs = MINUTE_MS,
): number {
  const total = refillMs(
    tokens.reduce((sum, amount) => sum + amount, 0),
    capacity,
    windowMs,
  );
  const last = refillMs(tokens.at(-1) ?? 0, capacity, windowMs);
  return Math.max(latestStart - (total - last), latestStart + windowMs - total);
}

/**
 * The bucket at another rate (and so another size): what it is short of full stays so, up to the whole of
 * the new size, and a debt stays a debt; only the time it takes to refill changes. An empty bucket made
 * smaller stays empty: it does not owe what the larger one held.
 */
export function atRate(state: BucketState, tokensPerMinute: number, now: number): BucketState {
  const level = levelAt(state, now);
  const short =
    level >= 0 ? Math.min(state.tokensPerMinute - level, tokensPerMinute) : tokensPerMinute - level;
  return { ...state, fullAt: now + refillMs(short, tokensPerMinute), tokensPerMinute, rateChangedAt: now };
}

/**
 * A throttle this long after the last one says the bucket ran ahead of Bedrock's (an answer overran on its
 * way back): the bucket is emptied, as Bedrock's is, and the rate stays. A throttle within it says another
 * application spends the quota too: the rate decreases.
 */
export const THROTTLE_MEMORY_MS = 60_000;

/** What a Bedrock throttle does to the bucket: empties it, lowers its rate, or only marks when it came. */
export type ThrottleResponse =
  | { readonly kind: 'empty'; readonly fullAt: number }
  | { readonly kind: 'slow'; readonly tokensPerMinute: number }
  | { readonly kind: 'mark' };

/** The response to a throttle now, from the bucket as it stands (see THROTTLE_MEMORY_MS). */
export function responseToThrottle(
  state: BucketState,
  settings: RateSettings,
  now: number,
): ThrottleResponse {
  if (state.throttledAt === undefined || now - state.throttledAt >= THROTTLE_MEMORY_MS)
    return { kind: 'empty', fullAt: Math.max(state.fullAt, now + MINUTE_MS) };
  const lowered = rateAfterThrottle(state, settings, now);
  return lowered === undefined ? { kind: 'mark' } : { kind: 'slow', tokensPerMinute: lowered };
}

/** The bucket after a throttle's response. */
export function afterThrottle(state: BucketState, response: ThrottleResponse, now: number): BucketState {
  const responded =
    response.kind === 'empty'
      ? { ...state, fullAt: response.fullAt }
      : response.kind === 'slow'
        ? atRate(state, response.tokensPerMinute, now)
        : state;
  return { ...responded, throttledAt: now };
}

/** How the spending rate adapts when Bedrock throttles calls the budget allowed (another application shares the quota). */
export interface RateSettings {
  /** The quota the pipeline may use, in tokens per minute. */
  readonly tokensPerMinute: number;
  /** The daily quota the pipeline may use; unknown, it is taken to be Bedrock's default (a day of the minute's). */
  readonly tokensPerDay?: number;
  /** A throttle multiplies the rate by this (multiplicative decrease). */
  readonly decreaseFactor: number;
  /** Throttles within this long of the last decrease are the same congestion and do not decrease it again. */
  readonly decreaseCooldownMs: number;
  /** The rate never goes below this share of the quota. */
  readonly floorShare: number;
  /** Every `recoveryIntervalMs` without a throttle, this share of the quota comes back (additive increase). */
  readonly increaseShare: number;
  readonly recoveryIntervalMs: number;
}

export const DEFAULT_RATE_SETTINGS: Omit<RateSettings, 'tokensPerMinute'> = {
  decreaseFactor: 0.7,
  decreaseCooldownMs: 5_000,
  floorShare: 0.1,
  increaseShare: 0.05,
  recoveryIntervalMs: 10_000,
};

/** One pool's quotas, as the budget spends them. */
export interface PoolRate {
  readonly tokensPerMinute: number;
  readonly tokensPerDay?: number | undefined;
}

/** The budget's rate settings, with each pool's own quotas where they differ from the default. */
export interface BudgetRates extends Partial<Omit<RateSettings, 'tokensPerMinute' | 'tokensPerDay'>> {
  /** The quota of a key without one of its own. */
  readonly tokensPerMinute: number;
  /** The quotas of pools, by budget key, that differ from `tokensPerMinute`. */
  readonly perKey?: Readonly<Record<string, PoolRate>>;
  /** Pools with no quota to spend (a quota of 0), by budget key, and why: no call is placed on them. */
  readonly leftOut?: Readonly<Record<string, string>>;
}

/** The rate settings of one budget key. */
export function ratesFor(rates: BudgetRates, key: string): RateSettings {
  const { perKey, leftOut: _leftOut, ...settings } = rates;
  const own = perKey?.[key];
  return {
    ...DEFAULT_RATE_SETTINGS,
    ...settings,
    tokensPerMinute: own?.tokensPerMinute ?? rates.tokensPerMinute,
    ...(own?.tokensPerDay === undefined ? {} : { tokensPerDay: own.tokensPerDay }),
  };
}

/** The rate after a Bedrock throttle, or undefined when it stays (just decreased, or at the floor). */
export function rateAfterThrottle(
  state: BucketState,
  settings: RateSettings,
  now: number,
): number | undefined {
  if (
    now - state.rateChangedAt < settings.decreaseCooldownMs &&
    state.tokensPerMinute < settings.tokensPerMinute
  ) {
    return undefined;
  }
  const floor = Math.ceil(settings.tokensPerMinute * settings.floorShare);
  const lowered = Math.max(floor, Math.round(state.tokensPerMinute * settings.decreaseFactor));
  return lowered < state.tokensPerMinute ? lowered : undefined;
}

/**
 * The rate after a quiet interval, or undefined when it stays: it climbs back toward the quota step by step,
 * and drops at once to a quota that was lowered by configuration.
 */
export function rateAfterRecovery(
  state: BucketState,
  settings: RateSettings,
  now: number,
): number | undefined {
  if (state.tokensPerMinute > settings.tokensPerMinute) return settings.tokensPerMinute;
  if (state.tokensPerMinute === settings.tokensPerMinute) return undefined;
  if (now - state.rateChangedAt < settings.recoveryIntervalMs) return undefined;
  return Math.min(
    settings.tokensPerMinute,
    Math.ceil(state.tokensPerMinute + settings.tokensPerMinute * settings.increaseShare),
  );
}
