import { type Catalog, catalogInUse } from '../catalog/catalog.ts';
import { type ServiceTier, serviceTiers } from '../contract/service-tiers.ts';
import type { RecordCompletion } from '../core/model.ts';
import { nanoUsdToUsd } from '../cost/cost.ts';

/** The counters of the records a service tier answered, and of what they cost there. */
type TierCounters = Record<`${ServiceTier}TierRecordCount` | `${ServiceTier}TierCostNanoUsd`, number>;

/** What the ledger adds up for a job; every field is a plain sum, so counters can be added atomically. */
export interface JobTotals extends TierCounters {
  readonly totalRecordCount: number;
  readonly successRecordCount: number;
  readonly errorRecordCount: number;
  readonly canceledRecordCount: number;
  readonly inputTokenCount: number;
  readonly outputTokenCount: number;
  readonly cacheCreationInputTokenCount: number;
  readonly cacheReadInputTokenCount: number;
  /** Records whose call read from the prompt cache. */
  readonly cacheHitRecordCount: number;
  /** Records whose call wrote to the prompt cache and read nothing from it. */
  readonly cacheMissRecordCount: number;
  readonly costNanoUsd: number;
  /** What the same calls would have cost with no prompt cache. */
  readonly uncachedCostNanoUsd: number;
  /** Calls that may have been billed with no usage counted: unanswered, abandoned, and their most cost. */
  readonly unansweredCallCount: number;
  readonly abandonedAttemptCount: number;
  readonly uncountedCostCapNanoUsd: number;
  /** Records answered by a model the catalog has no price for: their cost is unknown, left out of the cost. */
  readonly unpricedRecordCount: number;
  /** Records that asked for a tier Bedrock refused for their model: run on default instead. */
  readonly downgradedRecordCount: number;
  /** Of the canceled records, those that ended because their job expired before they ran. */
  readonly expiredRecordCount: number;
}

const noTierCounters = Object.fromEntries(
  serviceTiers.flatMap((tier) => [
    [`${tier}TierRecordCount`, 0],
    [`${tier}TierCostNanoUsd`, 0],
  ]),
) as TierCounters;

export const emptyTotals: JobTotals = {
  totalRecordCount: 0,
  successRecordCount: 0,
  errorRecordCount: 0,
  canceledRecordCount: 0,
  inputTokenCount: 0,
  outputTokenCount: 0,
  cacheCreationInputTokenCount: 0,
  cacheReadInputTokenCount: 0,
  cacheHitRecordCount: 0,
  cacheMissRecordCount: 0,
  costNanoUsd: 0,
  uncachedCostNanoUsd: 0,
  unansweredCallCount: 0,
  abandonedAttemptCount: 0,
  uncountedCostCapNanoUsd: 0,
  unpricedRecordCount: 0,
  downgradedRecordCount: 0,
  expiredRecordCount: 0,
  ...noTierCounters,
};

const STATUS_COUNTERS = {
  succeeded: 'successRecordCount',
  errored: 'errorRecordCount',
  canceled: 'canceledRecordCount',
  expired: 'canceledRecordCount',
} as const satisfies Readonly<Record<RecordCompletion['status'], keyof JobTotals>>;

/**
 * What one finished record adds to its job's totals, counter by counter (counters it leaves alone are
 * absent): the one rule every ledger adds by.
 */
export function totalsAddedBy(completion: RecordCompletion): Partial<Record<keyof JobTotals, number>> {
  const added: Partial<Record<keyof JobTotals, number>> = {};
  const add = (counter: keyof JobTotals, value: number) => {
    if (value !== 0) added[counter] = (added[counter] ?? 0) + value;
  };
  add(STATUS_COUNTERS[completion.status], 1);
  add('inputTokenCount', completion.inputTokens);
  add('outputTokenCount', completion.outputTokens);
  add('cacheCreationInputTokenCount', completion.cacheCreationInputTokens);
  add('cacheReadInputTokenCount', completion.cacheReadInputTokens);
  add('costNanoUsd', completion.costNanoUsd);
  add('uncachedCostNanoUsd', completion.uncachedCostNanoUsd);
  add('unansweredCallCount', completion.uncounted?.unanswered ?? 0);
  add('abandonedAttemptCount', completion.uncounted?.abandoned ?? 0);
  add('uncountedCostCapNanoUsd', completion.uncounted?.costCapNanoUsd ?? 0);
  add('unpricedRecordCount', completion.unpriced === true ? 1 : 0);
  add('downgradedRecordCount', completion.downgraded === true ? 1 : 0);
  add('expiredRecordCount', completion.status === 'expired' ? 1 : 0);
  const cache = cacheOutcomeOf(completion);
  if (cache !== undefined) add(cache === 'hit' ? 'cacheHitRecordCount' : 'cacheMissRecordCount', 1);
  if (completion.servedTier !== undefined) {
    add(`${completion.servedTier}TierRecordCount`, 1);
    add(`${completion.servedTier}TierCostNanoUsd`, completion.costNanoUsd);
  }
  return added;
}

/** Totals with what one or more records added (see `totalsAddedBy`). */
export function totalsPlus(totals: JobTotals, added: Partial<Record<keyof JobTotals, number>>): JobTotals {
  const sum: { -readonly [Counter in keyof JobTotals]: number } = { ...totals };
  for (const counter of Object.keys(added) as Array<keyof JobTotals>) sum[counter] += added[counter] ?? 0;
  return sum;
}

/** A record's part in its job's cache counters: a hit when its call read the cache, a miss when it only wrote. */
export function cacheOutcomeOf(completion: {
  readonly cacheCreationInputTokens: number;
  readonly cacheReadInputTokens: number;
}): 'hit' | 'miss' | undefined {
  if (completion.cacheReadInputTokens > 0) return 'hit';
  return completion.cacheCreationInputTokens > 0 ? 'miss' : undefined;
}

/**
 * What the prompt cache did for a job: the share of the records that used it which read from it (null when
 * none did), the tokens written and read, and what it saved against the same calls with no cache (negative
 * when writes were never read back).
 */
export function cacheSummary(totals: JobTotals) {
  const used = totals.cacheHitRecordCount + totals.cacheMissRecordCount;
  return {
    hitRate: used === 0 ? null : Math.round((totals.cacheHitRecordCount / used) * 10_000) / 10_000,
    hitRecords: totals.cacheHitRecordCount,
    missRecords: totals.cacheMissRecordCount,
    writeTokens: totals.cacheCreationInputTokenCount,
    readTokens: totals.cacheReadInputTokenCount,
    uncachedCostUsd: nanoUsdToUsd(totals.uncachedCostNanoUsd),
    savingUsd: nanoUsdToUsd(totals.uncachedCostNanoUsd - totals.costNanoUsd),
  };
}

export type CacheSummary = ReturnType<typeof cacheSummary>;

/**
 * Bedrock's service tiers for a job: the tier asked for, the records each tier answered and what they cost
 * there, and the records run on default because Bedrock refused the tier for their model.
 */
export function tierSummary(totals: JobTotals, requested: ServiceTier) {
  const perTier = <Value>(value: (tier: ServiceTier) => Value) =>
    Object.fromEntries(serviceTiers.map((tier) => [tier, value(tier)])) as Record<ServiceTier, Value>;
  return {
    requested,
    servedRecords: perTier((tier) => totals[`${tier}TierRecordCount`]),
    downgradedRecords: totals.downgradedRecordCount,
    costUsd: perTier((tier) => nanoUsdToUsd(totals[`${tier}TierCostNanoUsd`])),
  };
}

export type TierSummary = ReturnType<typeof tierSummary>;

/** The prompt cache's hit rate and saving so far, once a call has used the cache. */
export function cachePhrase(totals: JobTotals): string | undefined {
  const cache = cacheSummary(totals);
  if (cache.hitRate === null) return undefined;
  // Writing a prefix costs more than sending it once: a cache read by too few records saves nothing.
  const saving = cache.savingUsd;
  const effect =
    saving < 0 ? `cost $${(-saving).toFixed(4)} more than no cache` : `saved $${saving.toFixed(4)}`;
  return `cache ${(cache.hitRate * 100).toFixed(1)}% hits, ${effect}`;
}

/**
 * The manifest: Bedrock batch inference's `manifest.json.out` fields first (so tools built for native batch
 * read it), then ours. `details` carries job facts (ids, locations, model, endpoint, timing) as they are.
 */
export function buildManifest<Details extends object>(
  totals: JobTotals,
  details: Details,
  catalog: Catalog = catalogInUse(),
) {
  return {
    totalRecordCount: totals.totalRecordCount,
    processedRecordCount: totals.successRecordCount + totals.errorRecordCount,
    successRecordCount: totals.successRecordCount,
    errorRecordCount: totals.errorRecordCount,
    inputTokenCount: totals.inputTokenCount,
    outputTokenCount: totals.outputTokenCount,
    canceledRecordCount: totals.canceledRecordCount,
    cacheCreationInputTokenCount: totals.cacheCreationInputTokenCount,
    cacheReadInputTokenCount: totals.cacheReadInputTokenCount,
    estimatedCostUsd: nanoUsdToUsd(totals.costNanoUsd),
    cache: cacheSummary(totals),
    pricesCheckedOn: catalog.pricesCheckedOn,
    ...details,
  };
}
