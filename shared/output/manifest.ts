import { type Catalog, defaultCatalog } from '../catalog/catalog.ts';
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
  readonly costNanoUsd: number;
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
  costNanoUsd: 0,
};

/**
 * The manifest: Bedrock batch inference's `manifest.json.out` fields first (so tools built for native batch
 * read it), then ours. `details` carries job facts (ids, locations, model, endpoint, timing) as they are.
 */
export function buildManifest<Details extends object>(
  totals: JobTotals,
  details: Details,
  catalog: Catalog = defaultCatalog,
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
    pricesCheckedOn: catalog.pricesCheckedOn,
    ...details,
  };
}
