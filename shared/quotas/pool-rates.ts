import type { BudgetRates } from '../budget/bucket.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import { poolName, type QuotaPool } from './pools.ts';
import { type QuotaReading, type QuotaSource, readPoolQuotas } from './service-quotas.ts';

/** The quotas the pipeline spends in each pool, and where each came from: what a job's manifest reports. */
export interface QuotaReport {
  /** The last reading; undefined when there is none to report. */
  reading(): Promise<QuotaReading | undefined>;
}

/** A reading's pools as the shared budget spends them: each pool's usable quotas, and the pools left out. */
export function budgetRatesOf(reading: QuotaReading): Required<Pick<BudgetRates, 'perKey' | 'leftOut'>> {
  return {
    perKey: Object.fromEntries(
      reading.quotas.map((quota) => [
        poolName(quota.pool),
        { tokensPerMinute: quota.usableTokensPerMinute, tokensPerDay: quota.usableTokensPerDay },
      ]),
    ),
    leftOut: Object.fromEntries(reading.leftOut.map(({ pool, reason }) => [poolName(pool), reason])),
  };
}

/** Quotas the user gave (or the local stand-in's), reported as they are. */
export class ConfiguredQuotas implements QuotaReport {
  constructor(private readonly given: QuotaReading) {}

  async reading(): Promise<QuotaReading> {
    return this.given;
  }
}

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
export class ServiceQuotaRates implements QuotaReport {
  private current: BudgetRates;
  private lastReading: QuotaReading | undefined;
  private readAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly pools: readonly QuotaPool[],
    private readonly source: QuotaSource,
    private readonly settings: PoolRateSettings,
    private readonly clock: Pick<Clock, 'now'> = systemClock,
  ) {
    this.current = { tokensPerMinute: Math.floor(settings.fallback * settings.share) };
  }

  /** The rates as last read; a stale reading starts the next one, which later calls see. */
  rates(): BudgetRates {
    if (this.clock.now() - this.readAt >= this.settings.refreshMs) void this.refresh();
    return this.current;
  }

  /** Resolves once a reading has been made (or has failed): the first reserve waits for it. */
  async ready(): Promise<void> {
    if (this.readAt === Number.NEGATIVE_INFINITY) await this.refresh();
  }

  async reading(): Promise<QuotaReading | undefined> {
    await this.ready();
    this.rates();
    return this.lastReading;
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async read(): Promise<void> {
    try {
      const reading = await readPoolQuotas(this.pools, this.source, {
        fallback: this.settings.fallback,
        share: this.settings.share,
      });
      // A pool Service Quotas could not say this time keeps what it said before.
      const before = new Map(
        (this.lastReading?.quotas ?? [])
          .filter((quota) => quota.origin !== 'fallback')
          .map((quota) => [poolName(quota.pool), quota]),
      );
      this.lastReading = {
        quotas: reading.quotas.map((quota) =>
          quota.origin === 'fallback' ? (before.get(poolName(quota.pool)) ?? quota) : quota,
        ),
        leftOut: reading.leftOut,
      };
      this.current = { tokensPerMinute: this.current.tokensPerMinute, ...budgetRatesOf(this.lastReading) };
    } catch {
      // The last good reading (or the fallback) stays; the next refresh tries again.
    } finally {
      this.readAt = this.clock.now();
    }
  }
}
