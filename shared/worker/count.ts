import type { CountedRecord, JobRecord, JobRetries, StoredResult } from '../core/model.ts';
import { addRetries, NO_RETRIES } from '../core/retries.ts';
import { countResults, type JobResults } from '../pipeline/complete.ts';
import type { Batch, Decided, RecordVerdict } from './batch.ts';

/**
 * The count stage: the batch's verdicts folded into each job's results and counters, stored as one result
 * set per job and counted in one ledger transaction. A record the ledger did not count (a redelivery counted
 * it first) is told so.
 */
export async function count(decided: readonly Decided[], batch: Batch): Promise<RecordVerdict[]> {
  const counted = await countResults(batch.ports, tallyOf(decided), batch.setId);
  return decided.map(({ message, verdict }) => {
    if (verdict.kind !== 'done' || verdict.result === undefined) return verdict;
    const wasCounted = counted.some(
      (record: CountedRecord) => record.jobId === message.jobId && record.lineNumber === message.lineNumber,
    );
    return wasCounted ? verdict : { kind: 'done', status: 'already-done' };
  });
}

/** Each job's results (a message delivered twice in one batch is one record) and counters, from its verdicts. */
export function tallyOf(decided: readonly Decided[]): JobResults[] {
  const jobs = new Map<string, { job: JobRecord; results: Map<number, StoredResult>; retries: JobRetries }>();
  for (const { job, verdict } of decided) {
    if (job === undefined) continue;
    const entry = jobs.get(job.jobId) ?? { job, results: new Map(), retries: NO_RETRIES };
    jobs.set(job.jobId, entry);
    entry.retries = addRetries(entry.retries, countersOf(verdict));
    const result = verdict.kind === 'done' ? verdict.result : undefined;
    if (result !== undefined && !entry.results.has(result.completion.lineNumber))
      entry.results.set(result.completion.lineNumber, result);
  }
  return [...jobs.values()].map(({ job, results, retries }) => ({
    job,
    results: [...results.values()],
    retries,
  }));
}

/** What one delivery adds to its job's counters. */
function countersOf(verdict: RecordVerdict): Partial<JobRetries> {
  const failedCall = verdict.kind === 'retry' && verdict.called === true;
  const throttledHere = verdict.throttledHere?.calls ?? 0;
  return {
    receives: 1,
    bedrockCalls: (verdict.called === true ? 1 : 0) + throttledHere,
    budgetWaits: verdict.waitedMs === undefined ? 0 : 1,
    sentBackToWait: verdict.kind === 'wait' ? 1 : 0,
    retried: (failedCall ? 1 : 0) + throttledHere,
    bedrockThrottles: (failedCall && verdict.failure?.throttle === true ? 1 : 0) + throttledHere,
  };
}
