// Over 250 lines: the shared bucket's three writes (take, settle, change of rate), the daily bucket's part in
// them, and their retries on a lost race must read together; the arithmetic itself lives in shared/budget/.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  atRate,
  type BucketState,
  type BudgetRates,
  DAY_MS,
  type DayBucket,
  dayBucketOf,
  FULL_BUCKET_LEAD_MS,
  fullBucket,
  grantable,
  latestFullAtToStartBy,
  MINUTE_MS,
  rateAfterRecovery,
  ratesFor,
  refillMs,
  responseToThrottle,
  type ThrottleResponse,
  takeEach,
} from '../../shared/budget/bucket.ts';
import { budgetKey } from '../../shared/contract/ledger-table.ts';
import type { BudgetReservation } from '../../shared/core/model.ts';
import type { TokenBudget } from '../../shared/core/ports.ts';
import { poolName, poolsOfSettings } from '../../shared/quotas/pools.ts';

/** Rates that change while the budget runs (each pool's quota, read from Service Quotas again and again). */
export interface RatesSource {
  rates(): BudgetRates;
  /** Resolves once the first rates are known. */
  ready(): Promise<void>;
}

/** A bucket item left alone this long is deleted by TTL; the next call starts it full again. */
const IDLE_EXPIRY_SECONDS = 86_400;
/** Conditional writes that lose a race learn the item's state from the failure and try once more, at most this often. */
const WRITE_ATTEMPTS = 4;

type Write = Pick<
  UpdateCommandInput,
  'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeValues'
>;

/**
 * The shared token budget in the ledger table: one item per region and model id (`BUDGET#<key>` / `BUCKET`)
 * holding the bucket's `fullAt`, its rate, when the rate changed and when Bedrock last throttled a call it
 * allowed (`throttledAt`, absent until then; see shared/budget/bucket.ts). Taking tokens is one conditional
 * ADD on `fullAt`; a write that finds the bucket full, or another rate, fails with the item's state
 * (ReturnValuesOnConditionCheckFailure) and is sent again in the right form. Each worker keeps the state its
 * last write returned, so in steady use every reserve and every settle is one write. Where a pool's daily
 * quota is kept (see dayBucketOf), the same writes take from and settle `dayFullAt` too, on its own condition.
 */
export class DynamoDbTokenBudget implements TokenBudget {
  private readonly states = new Map<string, BucketState>();

  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly rates: BudgetRates | RatesSource,
    private readonly now: () => number = Date.now,
  ) {}

  private ratesOf(key: string) {
    return ratesFor('rates' in this.rates ? this.rates.rates() : this.rates, key);
  }

  async reserve(key: string, tokens: readonly number[], latestStart: number): Promise<BudgetReservation> {
    if (tokens.length === 0) return { key, tokens: 0, startAts: [], retryAt: undefined };
    if ('ready' in this.rates) await this.rates.ready();
    let seen: BucketState | undefined;
    for (let attempt = 1; ; attempt += 1) {
      const now = this.now();
      const state = this.stateOf(key, now);
      // Ask for the calls the bucket, as last seen, can start in time; at least one, since it may have more.
      const granted = tokens.slice(0, Math.max(1, grantable(state, tokens, now, latestStart)));
      const total = sumOf(granted);
      const minute: Write =
        state.fullAt <= now
          ? this.restart(state, now, now + FULL_BUCKET_LEAD_MS + refillMs(total, state.tokensPerMinute))
          : {
              UpdateExpression: 'ADD fullAt :dt SET expiresAt = :expires',
              ConditionExpression: 'tokensPerMinute = :rate AND fullAt BETWEEN :now AND :latest',
              ExpressionAttributeValues: {
                ':dt': refillMs(total, state.tokensPerMinute),
                ':rate': state.tokensPerMinute,
                ':now': now,
                ':latest': latestFullAtToStartBy(granted, state.tokensPerMinute, latestStart),
                ':expires': this.expiresAt(now),
              },
            };
      const written = await this.write(key, withDay(minute, dayTake(state.day, granted, now, latestStart)));
      if (written.ok) {
        // The takes began where the buckets stood before this write: now, where one was full.
        const before = {
          ...written.state,
          fullAt: state.fullAt <= now ? now : written.state.fullAt - refillMs(total, state.tokensPerMinute),
          ...dayBefore(state.day, written.state.day, total, now),
        };
        const rest = takeEach(written.state, tokens.slice(granted.length, granted.length + 1), now);
        return {
          key,
          tokens: total,
          startAts: takeEach(before, granted, now).startAts,
          retryAt: granted.length < tokens.length ? rest.startAts[0] : undefined,
        };
      }
      seen = written.state;
      const inTime = seen === undefined ? 1 : grantable(seen, tokens, now, latestStart);
      const waiting = seen !== undefined && (seen.fullAt >= now || (seen.day?.fullAt ?? now) > now);
      if ((inTime === 0 && waiting) || attempt === WRITE_ATTEMPTS) {
        return {
          key,
          tokens: 0,
          startAts: [],
          retryAt: takeEach(seen ?? state, tokens.slice(0, 1), now).startAts[0],
        };
      }
    }
  }

  async settle(reservation: BudgetReservation, chargedTokens: number): Promise<void> {
    const delta = chargedTokens - reservation.tokens;
    if (delta === 0) return;
    // Giving back only ever adds to a bucket that is not full: a full minute bucket takes nothing back,
    // while the daily one, refilling far slower, may still.
    let minuteFull = false;
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt += 1) {
      const now = this.now();
      const state = this.stateOf(reservation.key, now);
      const day = daySettle(state.day, delta, now);
      if (minuteFull && day === undefined) return;
      const written = await this.write(
        reservation.key,
        withDay(minuteFull ? this.touch(now) : this.minuteSettle(state, delta, now), day),
      );
      if (written.ok) {
        await this.adjustRate(reservation.key, (seen) =>
          rateAfterRecovery(seen, this.ratesOf(reservation.key), now),
        );
        return;
      }
      minuteFull = delta < 0 && (written.state === undefined || written.state.fullAt < now);
    }
  }

  /** A charge that differs from its reservation by `delta`, on the minute's bucket: a debt on a full one counts from now. */
  private minuteSettle(state: BucketState, delta: number, now: number): Write {
    if (delta > 0 && state.fullAt <= now)
      return this.restart(state, now, now + refillMs(delta, state.tokensPerMinute));
    return {
      UpdateExpression: 'ADD fullAt :dt SET expiresAt = :expires',
      ConditionExpression: 'tokensPerMinute = :rate AND fullAt >= :now',
      ExpressionAttributeValues: {
        ':dt': refillMs(delta, state.tokensPerMinute),
        ':rate': state.tokensPerMinute,
        ':now': now,
        ':expires': this.expiresAt(now),
      },
    };
  }

  /** A write that leaves the minute's bucket as it is. */
  private touch(now: number): Write {
    return {
      UpdateExpression: 'SET expiresAt = :expires',
      ConditionExpression: 'attribute_exists(fullAt)',
      ExpressionAttributeValues: { ':expires': this.expiresAt(now) },
    };
  }

  /**
   * Responds to a throttle as the bucket stands (see THROTTLE_MEMORY_MS), on the state this worker last saw:
   * a write whose condition finds another state learns it and decides again.
   */
  async recordThrottle(key: string): Promise<void> {
    for (let attempt = 1; attempt <= WRITE_ATTEMPTS; attempt += 1) {
      const now = this.now();
      const state = this.stateOf(key, now);
      const written = await this.write(
        key,
        this.throttleWrite(state, responseToThrottle(state, this.ratesOf(key), now), now),
      );
      if (written.ok) return;
    }
  }

  async pauseUntil(key: string, until: number): Promise<void> {
    const now = this.now();
    const state = this.stateOf(key, now);
    // Empty at `until`: nothing starts before it, and the bucket refills from there.
    const fullAt = until + MINUTE_MS;
    await this.write(key, {
      UpdateExpression:
        'SET fullAt = :fullAt, expiresAt = :expires, tokensPerMinute = if_not_exists(tokensPerMinute, :rate), rateChangedAt = if_not_exists(rateChangedAt, :now)',
      ConditionExpression: 'attribute_not_exists(fullAt) OR fullAt < :fullAt',
      ExpressionAttributeValues: {
        ':fullAt': fullAt,
        ':rate': state.tokensPerMinute,
        ':now': now,
        ':expires': this.expiresAt(now),
      },
    });
  }

  async spendableFrom(key: string): Promise<number> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: budgetKey(key), ConsistentRead: true }),
    );
    const state = this.stateOfItem(key, Item);
    if (state !== undefined) this.states.set(key, state);
    const now = this.now();
    return Math.max((state?.fullAt ?? now) - MINUTE_MS, (state?.day?.fullAt ?? now) - DAY_MS);
  }

  /**
   * The write that carries out a throttle's response, on the condition that the bucket is as `seen` where it
   * matters: emptying only ever moves `fullAt` later, and a change of rate is an add (see `rateChange`).
   */
  private throttleWrite(seen: BucketState, response: ThrottleResponse, now: number): Write {
    const throttledAsSeen =
      seen.throttledAt === undefined ? 'attribute_not_exists(throttledAt)' : 'throttledAt = :seenThrottledAt';
    const values = {
      ...(seen.throttledAt === undefined ? {} : { ':seenThrottledAt': seen.throttledAt }),
      ':now': now,
      ':expires': this.expiresAt(now),
    };
    if (response.kind === 'empty')
      return {
        UpdateExpression:
          'SET fullAt = :fullAt, throttledAt = :now, expiresAt = :expires, tokensPerMinute = if_not_exists(tokensPerMinute, :rate), rateChangedAt = if_not_exists(rateChangedAt, :now)',
        ConditionExpression: `(attribute_not_exists(fullAt) OR fullAt <= :fullAt) AND ${throttledAsSeen}`,
        ExpressionAttributeValues: { ...values, ':fullAt': response.fullAt, ':rate': seen.tokensPerMinute },
      };
    if (response.kind === 'slow')
      return this.rateChange(seen, response.tokensPerMinute, now, 'throttledAt = :now, ');
    return {
      UpdateExpression: 'SET throttledAt = :now, expiresAt = :expires',
      ConditionExpression: throttledAsSeen,
      ExpressionAttributeValues: values,
    };
  }

  /** The bucket as this worker last saw it, or a full one at the key's quota. */
  stateOf(key: string, now: number): BucketState {
    const rates = this.ratesOf(key);
    return this.states.get(key) ?? fullBucket(rates.tokensPerMinute, now, rates.tokensPerDay);
  }

  async lastSeen(key: string): Promise<BucketState | undefined> {
    if (this.leftOut(key)) return undefined;
    return this.stateOf(key, this.now());
  }

  private leftOut(key: string): boolean {
    const rates = 'rates' in this.rates ? this.rates.rates() : this.rates;
    return rates.leftOut?.[key] !== undefined;
  }

  /** The bucket an item holds, with its daily bucket where the key's daily quota is kept (see dayBucketOf). */
  private stateOfItem(key: string, item: Record<string, unknown> | undefined): BucketState | undefined {
    if (item === undefined || typeof item.fullAt !== 'number' || typeof item.tokensPerMinute !== 'number') {
      return undefined;
    }
    const day = dayBucketOf(this.ratesOf(key), typeof item.dayFullAt === 'number' ? item.dayFullAt : 0);
    return {
      fullAt: item.fullAt,
      tokensPerMinute: item.tokensPerMinute,
      rateChangedAt: typeof item.rateChangedAt === 'number' ? item.rateChangedAt : 0,
      ...(typeof item.throttledAt === 'number' ? { throttledAt: item.throttledAt } : {}),
      ...(day === undefined ? {} : { day }),
    };
  }

  /** Sets `fullAt` on a bucket that is full (or new): the add would count from a moment already past. */
  private restart(state: BucketState, now: number, fullAt: number): Write {
    return {
      UpdateExpression:
        'SET fullAt = :fullAt, expiresAt = :expires, tokensPerMinute = if_not_exists(tokensPerMinute, :rate), rateChangedAt = if_not_exists(rateChangedAt, :now)',
      ConditionExpression: 'attribute_not_exists(fullAt) OR (tokensPerMinute = :rate AND fullAt <= :now)',
      ExpressionAttributeValues: {
        ':fullAt': fullAt,
        ':rate': state.tokensPerMinute,
        ':now': now,
        ':expires': this.expiresAt(now),
      },
    };
  }

  /**
   * Moves the bucket to the rate `decide` picks from its state (see `rateChange`). Of several workers changing
   * the rate at once only one wins; a loser decides again from the state its failed write returned.
   */
  private async adjustRate(key: string, decide: (state: BucketState) => number | undefined): Promise<void> {
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      const now = this.now();
      const state = this.stateOf(key, now);
      const tokensPerMinute = decide(state);
      if (tokensPerMinute === undefined) return;
      const written = await this.write(key, this.rateChange(state, tokensPerMinute, now));
      if (written.ok) return;
    }
  }

  /**
   * Moves the bucket as `state` to another rate, keeping its tokens: `fullAt` moves by the difference, as an
   * add, so takes that land in between are kept; `alsoSet` names other attributes the write sets.
   */
  private rateChange(state: BucketState, tokensPerMinute: number, now: number, alsoSet = ''): Write {
    return {
      UpdateExpression: `ADD fullAt :shift SET ${alsoSet}tokensPerMinute = :rate, rateChangedAt = :now, expiresAt = :expires`,
      ConditionExpression: 'tokensPerMinute = :previous AND rateChangedAt = :changedAt',
      ExpressionAttributeValues: {
        ':shift': atRate(state, tokensPerMinute, now).fullAt - Math.max(state.fullAt, now),
        ':rate': tokensPerMinute,
        ':previous': state.tokensPerMinute,
        ':changedAt': state.rateChangedAt,
        ':now': now,
        ':expires': this.expiresAt(now),
      },
    };
  }

  /** One conditional write; the item after it, or the item that failed its condition. */
  private async write(
    key: string,
    write: Write,
  ): Promise<{ ok: true; state: BucketState } | { ok: false; state: BucketState | undefined }> {
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: budgetKey(key),
          ...write,
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      const state = this.stateOfItem(key, Attributes);
      if (state === undefined) throw new Error(`budget item ${key} has no bucket after a write`);
      this.states.set(key, state);
      return { ok: true, state };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const state = error.Item === undefined ? undefined : this.stateOfItem(key, unmarshall(error.Item));
      if (state === undefined) this.states.delete(key);
      else this.states.set(key, state);
      return { ok: false, state };
    }
  }

  private expiresAt(now: number): number {
    return Math.floor(now / 1000) + IDLE_EXPIRY_SECONDS;
  }
}

function sumOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0);
}

/** What a write does to the daily bucket besides the minute's: a clause of its SET and a condition. */
interface DayWrite {
  readonly set: string;
  readonly condition: string;
  readonly values: Record<string, number>;
}

/** Adds the daily bucket's part to a write (its update ends with a SET clause). */
function withDay(write: Write, day: DayWrite | undefined): Write {
  if (day === undefined) return write;
  return {
    UpdateExpression: `${write.UpdateExpression}, ${day.set}`,
    ConditionExpression: `(${write.ConditionExpression}) AND (${day.condition})`,
    ExpressionAttributeValues: { ...write.ExpressionAttributeValues, ...day.values },
  };
}

/** Taking `granted` from the daily bucket, on the condition that each is there by `latestStart`. */
function dayTake(
  day: DayBucket | undefined,
  granted: readonly number[],
  now: number,
  latestStart: number,
): DayWrite | undefined {
  if (day === undefined) return undefined;
  const refill = refillMs(sumOf(granted), day.tokensPerDay, DAY_MS);
  return day.fullAt <= now
    ? {
        set: 'dayFullAt = :dayFullAt',
        condition: 'attribute_not_exists(dayFullAt) OR dayFullAt <= :now',
        values: { ':dayFullAt': now + FULL_BUCKET_LEAD_MS + refill, ':now': now },
      }
    : {
        set: 'dayFullAt = dayFullAt + :dayDt',
        condition: 'dayFullAt BETWEEN :now AND :dayLatest',
        values: {
          ':dayDt': refill,
          ':now': now,
          ':dayLatest': latestFullAtToStartBy(granted, day.tokensPerDay, latestStart, DAY_MS),
        },
      };
}

/** A charge that differs from its reservation by `delta`, on the daily bucket; giving back to a full one is nothing. */
function daySettle(day: DayBucket | undefined, delta: number, now: number): DayWrite | undefined {
  if (day === undefined || (delta < 0 && day.fullAt <= now)) return undefined;
  const refill = refillMs(delta, day.tokensPerDay, DAY_MS);
  return day.fullAt <= now
    ? {
        set: 'dayFullAt = :dayFullAt',
        condition: 'attribute_not_exists(dayFullAt) OR dayFullAt <= :now',
        values: { ':dayFullAt': now + refill, ':now': now },
      }
    : {
        set: 'dayFullAt = dayFullAt + :dayDt',
        condition: 'dayFullAt >= :now',
        values: { ':dayDt': refill, ':now': now },
      };
}

/** The daily bucket as it stood before a take of `total` that left it `after`. */
function dayBefore(
  seen: DayBucket | undefined,
  after: DayBucket | undefined,
  total: number,
  now: number,
): { day?: DayBucket } {
  if (seen === undefined || after === undefined) return {};
  const fullAt = seen.fullAt <= now ? now : after.fullAt - refillMs(total, after.tokensPerDay, DAY_MS);
  return { day: { ...after, fullAt } };
}

/**
 * How long from `now` until the tokens granted so far on a job's pools may all be spent, as their buckets
 * stand: a call granted now starts no sooner. 0 when every pool has tokens to spare.
 */
export async function secondsUntilTokens(
  documents: DynamoDBDocumentClient,
  tableName: string,
  settings: Parameters<typeof poolsOfSettings>[0],
  now: number = Date.now(),
): Promise<number> {
  // Only the minute buckets are read (their rates are in the items); a daily quota's wait is not told here.
  const budget = new DynamoDbTokenBudget(documents, tableName, { tokensPerMinute: 1 }, () => now);
  const keys = poolsOfSettings(settings).map(poolName);
  const spendable = await Promise.all(keys.map((key) => budget.spendableFrom(key)));
  return Math.max(0, ...spendable.map((at) => (at - now) / 1000));
}
