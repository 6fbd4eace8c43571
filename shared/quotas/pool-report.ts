import { ModelSelectionError } from '../errors.ts';
import { choiceOf, type PoolSettings, poolName, poolsOfSettings } from './pools.ts';
import type { PoolQuota, QuotaReading } from './service-quotas.ts';

/** What a job's manifest says of a pool's quota: the figures the pipeline spent by, and where they came from. */
export interface ReportedQuota {
  readonly tokensPerMinute: number;
  readonly tokensPerDay: number | null;
  /** What the pipeline spent of them (the quota share). */
  readonly usableTokensPerMinute: number;
  readonly origin: PoolQuota['origin'];
  /** The Service Quotas names that matched. */
  readonly matched: readonly string[];
}

/** A pool the job could not use, and why. */
export interface PoolLeftOutReport {
  readonly region: string;
  readonly endpoint: string;
  readonly modelId: string;
  readonly reason: string;
}

/** Each pool a job used, with its endpoint and quota where the reading has them. */
export function withQuotas<Used extends { readonly region: string; readonly modelId: string }>(
  used: readonly Used[],
  reading: QuotaReading | undefined,
): Array<Used & { endpoint?: string; quota?: ReportedQuota }> {
  const quotas = new Map((reading?.quotas ?? []).map((quota) => [poolName(quota.pool), quota]));
  return used.map((pool) => {
    const quota = quotas.get(poolName(pool));
    if (quota === undefined) return { ...pool };
    return {
      ...pool,
      endpoint: quota.pool.endpoint,
      quota: {
        tokensPerMinute: quota.tokensPerMinute,
        tokensPerDay: quota.tokensPerDay ?? null,
        usableTokensPerMinute: quota.usableTokensPerMinute,
        origin: quota.origin,
        matched: quota.matched,
      },
    };
  });
}

/**
 * The pools a job's settings allow that the reading left out (a quota of 0), for the models the job called
 * and its default model: what it could not spread onto, and why.
 */
export function leftOutFor(
  settings: PoolSettings & { readonly model: string },
  calledModelIds: readonly string[],
  reading: QuotaReading | undefined,
): PoolLeftOutReport[] {
  if (reading === undefined || reading.leftOut.length === 0) return [];
  const own = new Set(ownPools(settings).map(poolName));
  const { endpoints, regions } = choiceOf(settings);
  return reading.leftOut
    .filter(
      ({ pool }) =>
        own.has(poolName(pool)) ||
        (regions.includes(pool.region) &&
          endpoints.includes(pool.endpoint) &&
          calledModelIds.some((modelId) => modelId.endsWith(pool.model.bedrockId))),
    )
    .map(({ pool, reason }) => ({
      region: pool.region,
      endpoint: pool.endpoint,
      modelId: pool.modelId,
      reason,
    }));
}

/** The pools of the job's default model; none when the catalog no longer knows it (the job still finishes). */
function ownPools(settings: PoolSettings & { readonly model: string }) {
  try {
    return poolsOfSettings(settings);
  } catch (error) {
    if (error instanceof ModelSelectionError) return [];
    throw error;
  }
}
