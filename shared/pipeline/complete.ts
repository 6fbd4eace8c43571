import { randomUUID } from 'node:crypto';
import type { ServiceTier } from '../contract/service-tiers.ts';
import { resultSetLocation } from '../contract/storage-layout.ts';
import type { JobFinalization, Jobs, RecordLedger } from '../core/ledger.ts';
import type {
  CountedRecord,
  JobRecord,
  JobRetries,
  JobUpdate,
  RecordCompletion,
  StoredResult,
} from '../core/model.ts';
import type { FinalizeTrigger, ObjectStore } from '../core/ports.ts';
import { NO_RETRIES } from '../core/retries.ts';
import { costOfRequest, type TokenUsage, withoutCache } from '../cost/cost.ts';
import type { InputFamily } from '../input/records.ts';
import { parseResultSet, resultSetBody } from '../messages/result-set.ts';
import type { ResolvedModel } from '../models/resolve-model.ts';
import type { RecordOutcome } from '../output/result-records.ts';

export interface CompletionPorts {
  readonly store: ObjectStore;
  readonly ledger: Pick<RecordLedger, 'completeRecords'> &
    Pick<Jobs, 'getJob'> &
    Pick<JobFinalization, 'claimFinalization'>;
  readonly finalize: FinalizeTrigger;
}

/**
 * A call's usage and what it is billed as: the model and endpoint, the service tier that served it (on
 * demand), and the lane's price multiplier.
 */
interface Billing {
  readonly usage: TokenUsage;
  readonly resolved: ResolvedModel;
  readonly tier?: ServiceTier;
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
    ...costsOf(billing),
    ...(billing?.tier === undefined ? {} : { servedTier: billing.tier }),
  };
}

/** What the usage costs, and would have cost with no cache; unknown (unpriced) for a model with no price. */
function costsOf(billing: Billing | undefined) {
  const cost = billing === undefined ? 0 : priceOf(billing, billing.usage);
  if (billing === undefined || cost === undefined) {
    return { costNanoUsd: 0, uncachedCostNanoUsd: 0, ...(cost === undefined ? { unpriced: true } : {}) };
  }
  return { costNanoUsd: cost, uncachedCostNanoUsd: priceOf(billing, withoutCache(billing.usage)) ?? 0 };
}

/** What `usage` costs on the billed model and endpoint, at the lane's price. */
function priceOf(billing: Billing, usage: TokenUsage): number | undefined {
  const { model, endpoint } = billing.resolved;
  const cost = costOfRequest(usage, model, endpoint, billing.tier);
  return cost === undefined ? undefined : Math.round(cost.total * (billing.priceMultiplier ?? 1));
}

/** The result an earlier attempt stored for the record in `resultSet`, if it got that far. */
export async function readEarlierResult(
  store: ObjectStore,
  job: Pick<JobRecord, 'source'>,
  resultSet: string,
  lineNumber: number,
): Promise<StoredResult | undefined> {
  const bytes = await store.read({ bucket: job.source.bucket, key: resultSet });
  if (bytes === undefined) return undefined;
  return parseResultSet(bytes, resultSet).find((result) => result.completion.lineNumber === lineNumber);
}

/**
 * Counts finished records and retries in the ledger, in one transaction that leaves out records counted
 * before, and starts the finalizer of each job whose last record it counted (only one caller ever does).
 */
async function countInLedger(
  ports: Pick<CompletionPorts, 'ledger' | 'finalize'>,
  updates: readonly JobUpdate[],
): Promise<readonly CountedRecord[]> {
  const counted = await ports.ledger.completeRecords(updates);
  for (const jobId of new Set(counted.map((record) => record.jobId))) await finalizeIfDone(ports, jobId);
  return counted;
}

/** A job's records finished together, and the retries counted with them. */
export interface JobResults {
  readonly job: Pick<JobRecord, 'jobId' | 'source'>;
  readonly results: readonly StoredResult[];
  readonly retries: JobRetries;
}

/**
 * Stores each job's finished results as one result set, then counts them all, with where they are, in one
 * transaction (see countInLedger).
 */
export async function countResults(
  ports: CompletionPorts,
  finished: readonly JobResults[],
  setId: string,
): Promise<readonly CountedRecord[]> {
  const updates = await Promise.all(
    finished.map(async ({ job, results, retries }): Promise<JobUpdate> => {
      const update = { jobId: job.jobId, completions: results.map((result) => result.completion), retries };
      if (results.length === 0) return update;
      const location = resultSetLocation(job, setId);
      await ports.store.put(location, resultSetBody(results), 'application/jsonl');
      return { ...update, resultSet: location.key };
    }),
  );
  return countInLedger(ports, updates);
}

/** Results in one result set, at most: its object stays small enough to read whole. */
const RESULTS_PER_SET = 500;

/** Counts results of one job exactly once, a few hundred to a result set (see countResults). */
export async function countJobResults(
  ports: CompletionPorts,
  job: JobRecord,
  results: readonly StoredResult[],
): Promise<void> {
  for (let start = 0; start < results.length; start += RESULTS_PER_SET)
    await countResults(
      ports,
      [{ job, results: results.slice(start, start + RESULTS_PER_SET), retries: NO_RETRIES }],
      randomUUID(),
    );
}

/** Starts the finalizer if every record of a fully read job is done; only one caller ever does. */
export async function finalizeIfDone(
  ports: {
    ledger: Pick<Jobs, 'getJob'> & Pick<JobFinalization, 'claimFinalization'>;
    finalize: FinalizeTrigger;
  },
  jobId: string,
): Promise<void> {
  const job = await ports.ledger.getJob(jobId);
  if (job === undefined || job.totalRecords === undefined || job.doneRecords < job.totalRecords) return;
  if (await ports.ledger.claimFinalization(jobId)) await ports.finalize.trigger(jobId);
}
