import type { BudgetRates } from '../budget/bucket.ts';
import { poolName, type QuotaPool } from './pools.ts';
import { type QuotaSource, readPoolQuotas } from './service-quotas.ts';

export interface PoolRateSettings {
  /** The quota of a pool Service Quotas cannot say, and of keys that are no pool of the deployment's. */
  readonly fallback: number;
  /** The part of each quota the pipeline spends. */
  readonly share: number;
  /** How old a reading may get before the next use of the rates starts another. */
  readonly refreshMs: number;
}

/**
 * The shared budget's rates, each pool's from Service Quotas: read before the first use, then again in the
 * background when a reading is older than `refreshMs` (a raised quota is spent within minutes, with no
 * deploy); a reading that fails keeps the last good one.
 */
export class ServiceQuotaRates {
  private current: BudgetRates;
  private readAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly pools: readonly QuotaPool[],
    private readonly source: QuotaSource,
    private readonly settings: PoolRateSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.current = { tokensPerMinute: Math.floor(settings.fallback * settings.share) };
  }

  /** The rates as last read; a stale reading starts the next one, which later calls see. */
  rates(): BudgetRates {
    if (this.now() - this.readAt >= this.settings.refreshMs) void this.refresh();
    return this.current;
  }

  /** Resolves once a reading has been made (or has failed): the first reserve waits for it. */
  async ready(): Promise<void> {
    if (this.readAt === Number.NEGATIVE_INFINITY) await this.refresh();
  }

  private refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    try {
      const { quotas } = await readPoolQuotas(this.pools, this.source, {
        fallback: this.settings.fallback,
        share: this.settings.share,
      });
      const known = this.current.perKey ?? {};
      this.current = {
        tokensPerMinute: this.current.tokensPerMinute,
        perKey: Object.fromEntries(
          quotas.map((quota) => {
            const key = poolName(quota.pool);
            // A pool Service Quotas could not say this time keeps what it said before.
            const kept = quota.origin === 'fallback' ? known[key] : undefined;
            return [key, kept ?? quota.usableTokensPerMinute];
          }),
        ),
      };
    } catch {
      // The last good reading (or the fallback) stays; the next refresh tries again.
    } finally {
      this.readAt = this.now();
    }
  }
}
