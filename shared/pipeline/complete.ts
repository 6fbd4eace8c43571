import { costOfRequest, type TokenUsage } from '../cost/cost.ts';
import type { InputFamily } from '../input/records.ts';
import type { ResolvedModel } from '../models/resolve-model.ts';
import type { RecordOutcome } from '../output/result-records.ts';
import { resultLocation } from './job.ts';
import type {
  FinalizeTrigger,
  JobRecord,
  Ledger,
  ObjectStore,
  RecordCompletion,
  StoredResult,
} from './ports.ts';

export interface CompletionPorts {
  readonly store: ObjectStore;
  readonly ledger: Ledger;
  readonly finalize: FinalizeTrigger;
}

/** What a finished record adds to its job's counters, from its outcome (and usage, for a success). */
export function completionOf(
  lineNumber: number,
  family: InputFamily | undefined,
  outcome: RecordOutcome,
  billing?: { usage: TokenUsage; resolved: ResolvedModel },
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
    costNanoUsd:
      billing === undefined
        ? 0
        : costOfRequest(billing.usage, billing.resolved.model, billing.resolved.endpoint).total,
  };
}

/**
 * Finishes a record exactly once. The result object is written only if absent, so a racing or redelivered
 * attempt never replaces a result with a different one: it adopts the stored one. The ledger then counts the
 * record in one transaction that does nothing if it was counted before. The call that counts the job's last
 * record starts finalization.
 */
export async function finishRecord(
  ports: CompletionPorts,
  job: JobRecord,
  result: StoredResult,
): Promise<StoredResult> {
  const location = resultLocation(job, result.completion.lineNumber);
  let stored = result;
  if ((await ports.store.putIfAbsent(location, JSON.stringify(result))) === 'exists') {
    const existing = await ports.store.read(location);
    if (existing !== undefined) stored = JSON.parse(Buffer.from(existing).toString('utf8')) as StoredResult;
  }
  if (await ports.ledger.completeRecord(job.jobId, stored.completion)) await finalizeIfDone(ports, job.jobId);
  return stored;
}

/** Starts the finalizer if every record of a fully read job is done; only one caller ever does. */
export async function finalizeIfDone(
  ports: Pick<CompletionPorts, 'ledger' | 'finalize'>,
  jobId: string,
): Promise<void> {
  const job = await ports.ledger.getJob(jobId);
  if (job === undefined || job.totalRecords === undefined || job.doneRecords < job.totalRecords) return;
  if (await ports.ledger.claimFinalization(jobId)) await ports.finalize.trigger(jobId);
}

/**
 * Counts a record from the result an earlier attempt stored before it stopped (a crash between the result
 * write and the ledger update); false when there is none and the record still has to run.
 */
export async function completeFromStore(
  ports: CompletionPorts,
  job: JobRecord,
  lineNumber: number,
): Promise<boolean> {
  const existing = await ports.store.read(resultLocation(job, lineNumber));
  if (existing === undefined) return false;
  const stored = JSON.parse(Buffer.from(existing).toString('utf8')) as StoredResult;
  if (await ports.ledger.completeRecord(job.jobId, stored.completion)) await finalizeIfDone(ports, job.jobId);
  return true;
}
