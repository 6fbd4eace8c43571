import { TokenBucket } from './token-bucket.ts';

export interface QuotaSettings {
  readonly tokensPerMinute: number;
  /** Optional: Bedrock has moved to token limits, but some accounts still see request limits. */
  readonly requestsPerMinute?: number | undefined;
}

export interface QuotaUsage {
  readonly modelId: string;
  readonly tokensPerMinute: number;
  readonly requestsPerMinute: number | undefined;
  readonly availableTokens: number;
  /** Requests admitted, and requests refused with a 429 for want of quota. */
  readonly requests: number;
  readonly throttled: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Quota tokens finally charged: input plus output at the burndown rate. */
  readonly quotaTokensCharged: number;
}

export interface Reservation {
  readonly modelId: string;
  readonly reserved: number;
}

interface ModelQuota {
  readonly tokens: TokenBucket;
  readonly requests: TokenBucket | undefined;
  requestCount: number;
  throttled: number;
  inputTokens: number;
  outputTokens: number;
  quotaTokensCharged: number;
}

/**
 * Quotas per model id as called (each inference profile has its own) in the stand-in's one region, with
 * Bedrock's accounting: reserve input + max_tokens x burndown at the start, settle to input + output x
 * burndown at the end.
 */
export class QuotaBoard {
  private readonly quotas = new Map<string, ModelQuota>();

  constructor(
    private readonly defaults: QuotaSettings,
    private readonly perModel: Readonly<Record<string, QuotaSettings>>,
    private readonly outputBurndown: number,
    private readonly now: () => number,
  ) {}

  /** Reserves the request's worst case, or returns undefined: the caller answers ThrottlingException. */
  reserve(modelId: string, inputTokens: number, maxTokens: number): Reservation | undefined {
    const quota = this.quotaOf(modelId);
    const now = this.now();
    const reserved = inputTokens + maxTokens * this.outputBurndown;
    if (quota.requests !== undefined && quota.requests.available(now) < 1) {
      quota.throttled += 1;
      return undefined;
    }
    if (!quota.tokens.tryTake(reserved, now)) {
      quota.throttled += 1;
      return undefined;
    }
    quota.requests?.tryTake(1, now);
    quota.requestCount += 1;
    return { modelId, reserved };
  }

  settle(reservation: Reservation, inputTokens: number, outputTokens: number): void {
    const quota = this.quotaOf(reservation.modelId);
    const charged = inputTokens + outputTokens * this.outputBurndown;
    quota.tokens.adjust(reservation.reserved - charged, this.now());
    quota.inputTokens += inputTokens;
    quota.outputTokens += outputTokens;
    quota.quotaTokensCharged += charged;
  }

  usage(): QuotaUsage[] {
    const now = this.now();
    return [...this.quotas.entries()].map(([modelId, quota]) => ({
      modelId,
      tokensPerMinute: quota.tokens.perMinute,
      requestsPerMinute: quota.requests?.perMinute,
      availableTokens: Math.floor(quota.tokens.available(now)),
      requests: quota.requestCount,
      throttled: quota.throttled,
      inputTokens: quota.inputTokens,
      outputTokens: quota.outputTokens,
      quotaTokensCharged: quota.quotaTokensCharged,
    }));
  }

  private quotaOf(modelId: string): ModelQuota {
    let quota = this.quotas.get(modelId);
    if (quota === undefined) {
      const settings = this.perModel[modelId] ?? this.defaults;
      const now = this.now();
      quota = {
        tokens: new TokenBucket(settings.tokensPerMinute, now),
        requests:
          settings.requestsPerMinute === undefined
            ? undefined
            : new TokenBucket(settings.requestsPerMinute, now),
        requestCount: 0,
        throttled: 0,
        inputTokens: 0,
        outputTokens: 0,
        quotaTokensCharged: 0,
      };
      this.quotas.set(modelId, quota);
    }
    return quota;
  }
}
