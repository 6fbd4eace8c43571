import { catalogInUse } from '../../shared/catalog/catalog.ts';
import { poolName } from '../../shared/quotas/pools.ts';
import { CROSS_REGION_DAILY_MULTIPLIER } from '../../shared/quotas/service-quotas.ts';
import { TokenBucket } from './token-bucket.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

export interface QuotaSettings {
  readonly tokensPerMinute: number;
  /** The rolling 24-hour token quota; Bedrock's default is tokensPerMinute x 1440. */
  readonly tokensPerDay?: number | undefined;
  /** Optional: Bedrock has moved to token limits, but some accounts still see request limits. */
  readonly requestsPerMinute?: number | undefined;
}

/** Which limit refused a request: each has its own ThrottlingException message. */
export type ThrottleCause = 'tokensPerMinute' | 'tokensPerDay' | 'requestsPerMinute';

export const THROTTLE_MESSAGES: Readonly<Record<ThrottleCause, string>> = {
  tokensPerMinute: 'Too many tokens, please wait before trying again.',
  tokensPerDay: 'Too many tokens per day, please wait before trying again.',
  requestsPerMinute: 'Too many requests, please wait before trying again.',
};

/** What a request asks for when it starts: its input, by how it meets the prompt cache, and its max_tokens. */
export interface RequestedTokens {
  readonly input: number;
  readonly cacheWrite: number;
  readonly cacheRead: number;
  readonly maxTokens: number;
}

/** What a request used when it ended. */
export interface UsedTokens {
  readonly input: number;
  readonly cacheWrite: number;
  readonly cacheRead: number;
  readonly output: number;
}

/** Where a request spends: the source region it was signed for and the model id as called. */
export interface StandInPool {
  readonly region: string;
  readonly modelId: string;
}

export interface QuotaUsage {
  readonly region: string;
  readonly modelId: string;
  readonly tokensPerMinute: number;
  readonly tokensPerDay: number;
  readonly requestsPerMinute: number | undefined;
  /** The minute bucket's level now: below zero when settled charges left the quota in debt. */
  readonly availableTokens: number;
  readonly availableDailyTokens: number;
  /** Requests admitted, and requests refused with a 429, by the limit that refused them. */
  readonly requests: number;
  readonly throttled: number;
  readonly throttledBy: Readonly<Record<ThrottleCause, number>>;
  readonly inFlight: number;
  readonly peakInFlight: number;
  readonly inputTokens: number;
  readonly cacheWriteTokens: number;
  readonly cacheReadTokens: number;
  readonly outputTokens: number;
  /** Quota tokens taken when requests started: input + cache write + cache read + max_tokens. */
  readonly tokensReserved: number;
  /** Quota tokens finally charged: input + cache write + output x burndown (cache reads are released). */
  readonly tokensCharged: number;
  /** When the first request was admitted and the last one settled (epoch ms): the span of the calls. */
  readonly firstAdmittedAt: number | undefined;
  readonly lastSettledAt: number | undefined;
}

export interface Reservation {
  readonly pool: StandInPool;
  readonly reserved: number;
}

export type Admission =
  | { readonly admitted: true; readonly reservation: Reservation }
  | { readonly admitted: false; readonly cause: ThrottleCause };

interface ModelQuota {
  readonly pool: StandInPool;
  readonly minute: TokenBucket;
  readonly day: TokenBucket;
  readonly requestRate: TokenBucket | undefined;
  requests: number;
  throttledBy: Record<ThrottleCause, number>;
  inFlight: number;
  peakInFlight: number;
  inputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  outputTokens: number;
  tokensReserved: number;
  tokensCharged: number;
  firstAdmittedAt: number | undefined;
  lastSettledAt: number | undefined;
}

/**
 * Quotas per pool, as Bedrock keeps them: per source region and model id as called (each inference profile
 * has its own), with Bedrock's documented accounting: a request is admitted when its reservation (input +
 * cache write + cache read + max_tokens) fits the minute and the day; when it ends the reservation becomes
 * the charge (input + cache write + output x burndown), which may be more than was reserved and leave the
 * quota in debt. A pool's settings are those given for `<region>#<modelId>`, else for the model id, else the
 * defaults.
 */
export class QuotaBoard {
  private readonly quotas = new Map<string, ModelQuota>();

  constructor(
    private readonly defaults: QuotaSettings,
    private readonly perPool: Readonly<Record<string, QuotaSettings>>,
    private readonly outputBurndown: number,
    private readonly now: () => number,
  ) {}

  /** Admits the request and takes its reservation, or says which limit refuses it (a ThrottlingException). */
  reserve(pool: StandInPool, requested: RequestedTokens): Admission {
    const quota = this.quotaOf(pool);
    const now = this.now();
    const reserved = requested.input + requested.cacheWrite + requested.cacheRead + requested.maxTokens;
    const cause: ThrottleCause | undefined = !quota.day.canTake(reserved, now)
      ? 'tokensPerDay'
      : !quota.minute.canTake(reserved, now)
        ? 'tokensPerMinute'
        : quota.requestRate !== undefined && !quota.requestRate.canTake(1, now)
          ? 'requestsPerMinute'
          : undefined;
    if (cause !== undefined) {
      quota.throttledBy[cause] += 1;
      return { admitted: false, cause };
    }
    quota.day.take(reserved, now);
    quota.minute.take(reserved, now);
    quota.requestRate?.take(1, now);
    quota.requests += 1;
    quota.inFlight += 1;
    quota.peakInFlight = Math.max(quota.peakInFlight, quota.inFlight);
    quota.tokensReserved += reserved;
    quota.firstAdmittedAt ??= now;
    return { admitted: true, reservation: { pool, reserved } };
  }

  /** Turns a finished request's reservation into its charge. */
  settle(reservation: Reservation, used: UsedTokens): void {
    const quota = this.quotaOf(reservation.pool);
    const now = this.now();
    const charged = used.input + used.cacheWrite + used.output * this.outputBurndown;
    quota.minute.adjust(reservation.reserved - charged, now);
    quota.day.adjust(reservation.reserved - charged, now);
    quota.inFlight -= 1;
    quota.inputTokens += used.input;
    quota.cacheWriteTokens += used.cacheWrite;
    quota.cacheReadTokens += used.cacheRead;
    quota.outputTokens += used.output;
    quota.tokensCharged += charged;
    quota.lastSettledAt = now;
  }

  usage(): QuotaUsage[] {
    const now = this.now();
    return [...this.quotas.values()].map(({ pool, minute, day, requestRate, throttledBy, ...counts }) => ({
      ...pool,
      tokensPerMinute: minute.capacity,
      tokensPerDay: day.capacity,
      requestsPerMinute: requestRate?.capacity,
      availableTokens: Math.floor(minute.available(now)),
      availableDailyTokens: Math.floor(day.available(now)),
      throttled: throttledBy.tokensPerMinute + throttledBy.tokensPerDay + throttledBy.requestsPerMinute,
      throttledBy: { ...throttledBy },
      ...counts,
    }));
  }

  /**
   * The quotas of a pool: its own, its model id's, or the stand-in's default. A profile without a daily
   * quota of its own gets its model's, doubled for cross-region calls, as Service Quotas names it.
   */
  limitsOf(pool: StandInPool): { readonly tokensPerMinute: number; readonly tokensPerDay: number } {
    const settings = this.settingsOf(pool);
    return {
      tokensPerMinute: settings.tokensPerMinute,
      tokensPerDay: settings.tokensPerDay ?? this.profileDayOf(pool) ?? settings.tokensPerMinute * 1_440,
    };
  }

  private profileDayOf(pool: StandInPool): number | undefined {
    const [prefix = '', ...rest] = pool.modelId.split('.');
    if (prefix !== 'global' && catalogInUse().geography(prefix) === undefined) return undefined;
    const day = this.settingsOf({ region: pool.region, modelId: rest.join('.') }).tokensPerDay;
    return day === undefined ? undefined : day * CROSS_REGION_DAILY_MULTIPLIER;
  }

  private settingsOf(pool: StandInPool): QuotaSettings {
    return this.perPool[poolName(pool)] ?? this.perPool[pool.modelId] ?? this.defaults;
  }

  private quotaOf(pool: StandInPool): ModelQuota {
    const key = poolName(pool);
    let quota = this.quotas.get(key);
    if (quota === undefined) {
      const settings = this.settingsOf(pool);
      const limits = this.limitsOf(pool);
      const now = this.now();
      quota = {
        pool: { region: pool.region, modelId: pool.modelId },
        minute: new TokenBucket(limits.tokensPerMinute, MINUTE_MS, now),
        day: new TokenBucket(limits.tokensPerDay, DAY_MS, now),
        requestRate:
          settings.requestsPerMinute === undefined
            ? undefined
            : new TokenBucket(settings.requestsPerMinute, MINUTE_MS, now),
        requests: 0,
        throttledBy: { tokensPerMinute: 0, tokensPerDay: 0, requestsPerMinute: 0 },
        inFlight: 0,
        peakInFlight: 0,
        inputTokens: 0,
        cacheWriteTokens: 0,
        cacheReadTokens: 0,
        outputTokens: 0,
        tokensReserved: 0,
        tokensCharged: 0,
        firstAdmittedAt: undefined,
        lastSettledAt: undefined,
      };
      this.quotas.set(key, quota);
    }
    return quota;
  }
}
