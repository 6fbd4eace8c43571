import { type Catalog, catalogInUse } from '../catalog/catalog.ts';
import { nanoUsdToUsd } from '../cost/cost.ts';

/** What the ledger adds up for a job; every field is a plain sum, so counters can be added atomically. */
export interface JobTotals {
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
}

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
};

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
