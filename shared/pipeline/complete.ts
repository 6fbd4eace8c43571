import { costOfRequest, type TokenUsage, withoutCache } from '../cost/cost.ts';
import type { InputFamily } from '../input/records.ts';
import type { ResolvedModel } from '../models/resolve-model.ts';
import type { RecordOutcome } from '../output/result-records.ts';
import { mapWithLimit } from './concurrency.ts';
import { NO_RETRIES, resultLocation } from './job.ts';
import type { CountedRecord, JobRecord, JobUpdate, RecordCompletion, StoredResult } from './model.ts';
import type { FinalizeTrigger, Ledger, ObjectStore } from './ports.ts';

export interface CompletionPorts {
  readonly store: ObjectStore;
  readonly ledger: Ledger;
  readonly finalize: FinalizeTrigger;
}

/** A call's usage and what it is billed as: the model and endpoint, and the lane's price multiplier. */
interface Billing {
  readonly usage: TokenUsage;
  readonly resolved: ResolvedModel;
  readonly priceMultiplier?: number;
}

/** What a finished record adds to its job's counters, from its outcome (and usage, for a success). */
export function completionOf(
  lineNumber: number,
  family: InputFamily | undefined,
  outcome: RecordOutcome,
  billing?: Billing,
): RecordCompletion {
  const usage = billing?.usage;
  return {
    lineNumber,
    status: outcome.status,
    family,
    inputTokens: usage?.input_tokens ?? 0,
    outputTokens: usage?.output_tokens ?? 0,
    cacheCreationInputTokens: usage?.cache_creation_input_tokens ?? 0,
    cacheReadInputTokens: usage?.cache_read_input_tokens ?? 0,
    costNanoUsd: billing === undefined ? 0 : priceOf(billing, billing.usage),
    uncachedCostNanoUsd: billing === undefined ? 0 : priceOf(billing, withoutCache(billing.usage)),
  };
}

/** What `usage` costs on the billed model and endpoint, at the lane's price. */
function priceOf(billing: Billing, usage: TokenUsage): number {
  const { model, endpoint } = billing.resolved;
  return Math.round(costOfRequest(usage, model, endpoint).total * (billing.priceMultiplier ?? 1));
}

/**
 * Stores a record's result unless one is stored already: a racing or redelivered attempt never replaces a
 * result with a different one, it adopts the stored one.
 */
export async function storeResult(
  store: ObjectStore,
  job: JobRecord,
  result: StoredResult,
): Promise<StoredResult> {
  const location = resultLocation(job, result.completion.lineNumber);
  if ((await store.putIfAbsent(location, JSON.stringify(result))) === 'written') return result;
  return (await readStoredResult(store, job, result.completion.lineNumber)) ?? result;
}

/** The result an attempt stored for the record, if one did. */
export async function readStoredResult(
  store: ObjectStore,
  job: JobRecord,
  lineNumber: number,
): Promise<StoredResult | undefined> {
  const stored = await store.read(resultLocation(job, lineNumber));
  if (stored === undefined) return undefined;
  const result = JSON.parse(Buffer.from(stored).toString('utf8')) as StoredResult;
  // Results stored before the uncached cost was kept count their cost as it: no saving is claimed for them.
  const { completion } = result;
  return {
    ...result,
    completion: {
      ...completion,
      uncachedCostNanoUsd: completion.uncachedCostNanoUsd ?? completion.costNanoUsd,
    },
  };
}

/**
 * Counts finished records and retries in the ledger, in one transaction that leaves out records counted
 * before, and starts the finalizer of each job whose last record it counted (only one caller ever does).
 */
export async function countInLedger(
  ports: Pick<CompletionPorts, 'ledger' | 'finalize'>,
  updates: readonly JobUpdate[],
): Promise<readonly CountedRecord[]> {
  const counted = await ports.ledger.completeRecords(updates);
  for (const jobId of new Set(counted.map((record) => record.jobId))) await finalizeIfDone(ports, jobId);
  return counted;
}

/** Finishes records of one job exactly once: stores each result, then counts them all. */
export async function finishRecords(
  ports: CompletionPorts,
  job: JobRecord,
  results: readonly StoredResult[],
  concurrency: number,
): Promise<void> {
  if (results.length === 0) return;
  const stored = await mapWithLimit(results, concurrency, (result) => storeResult(ports.store, job, result));
  await countInLedger(ports, [
    { jobId: job.jobId, completions: stored.map((result) => result.completion), retries: NO_RETRIES },
  ]);
}

/** Starts the finalizer if every record of a fully read job is done; only one caller ever does. */
export async function finalizeIfDone(
  ports: { ledger: Pick<Ledger, 'getJob' | 'claimFinalization'>; finalize: FinalizeTrigger },
  jobId: string,
): Promise<void> {
  const job = await ports.ledger.getJob(jobId);
  if (job === undefined || job.totalRecords === undefined || job.doneRecords < job.totalRecords) return;
  if (await ports.ledger.claimFinalization(jobId)) await ports.finalize.trigger(jobId);
}
