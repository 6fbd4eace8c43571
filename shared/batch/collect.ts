import { partPrefixes } from '../contract/storage-layout.ts';
import { isoTime } from '../core/clock.ts';
import type { BatchPart, JobRecord, StoredResult } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import { usageOfResponse } from '../cost/cost.ts';
import { resolveModel } from '../models/resolve-model.ts';
import type { MessagesResponse, RecordOutcome } from '../output/result-records.ts';
import { type CompletionPorts, completionOf, countJobResults } from '../pipeline/complete.ts';
import type { BatchLaunchSettings, BatchPorts } from './launch.ts';
import { stagedRecordsOf } from './staging.ts';

/** Bedrock's batch job states in which a job has ended and written what it will write. */
export const ENDED_BATCH_STATES: ReadonlySet<string> = new Set([
  'Completed',
  'PartiallyCompleted',
  'Failed',
  'Stopped',
  'Expired',
]);

export type CollectPorts = BatchPorts & CompletionPorts;

/**
 * Takes in what an ended batch job answered: each record it answered gets its result through the same
 * exactly-once path as the worker's (stored in result sets, counted once), at the batch price; every
 * other record (an error line, a record missing from the output, all of a job that failed, was stopped or
 * expired) goes to the record queue, where the worker runs it through the failure table like any record.
 */
export async function collectBatchPart(
  job: JobRecord,
  part: BatchPart,
  endedAs: string,
  ports: CollectPorts,
  settings: BatchLaunchSettings,
): Promise<{ answered: number; redriven: number }> {
  const staged = await stagedRecordsOf(job, part.part, ports.store);
  const answers = await batchAnswers(job, part, ports.store);
  const resolved = resolveModel(job.settings, settings.catalog);
  const finishedAt = isoTime(settings.clock);
  const results: StoredResult[] = [];
  const redrive = [];
  for (const [recordId, record] of staged) {
    const response = answers.get(recordId);
    if (response === undefined) {
      redrive.push(record.message);
      continue;
    }
    const outcome: RecordOutcome = { status: 'succeeded', response };
    const { lineNumber } = record.message;
    const billing = {
      usage: usageOfResponse(response),
      resolved,
      priceMultiplier: settings.catalog.batch.priceMultiplier,
    };
    results.push({
      subject: record.subject,
      outcome,
      completion: completionOf(lineNumber, record.subject.family, outcome, billing),
      timing: { finishedAt, attempts: 1, modelId: resolved.modelId, lane: 'batch' },
    });
  }
  await countJobResults(ports, job, results);
  await ports.queue.send(redrive);
  await ports.ledger.moveBatchPart(job.jobId, ['submitted'], { ...part, state: 'collected', endedAs });
  return { answered: results.length, redriven: redrive.length };
}

/** The records a part's batch job answered, by recordId; error lines are left out (they run again). */
async function batchAnswers(
  job: JobRecord,
  part: BatchPart,
  store: ObjectStore,
): Promise<Map<string, MessagesResponse>> {
  const answers = new Map<string, MessagesResponse>();
  const { bucket } = job.source;
  for await (const key of store.list(bucket, partPrefixes(job.jobId, part.part).output)) {
    if (!key.endsWith('.jsonl.out')) continue;
    const body = Buffer.from((await store.read({ bucket, key })) ?? new Uint8Array()).toString('utf8');
    for (const line of body.split('\n')) {
      if (line.trim() === '') continue;
      const answer = JSON.parse(line) as { recordId?: unknown; modelOutput?: unknown; error?: unknown };
      if (typeof answer.recordId === 'string' && answer.error === undefined && isResponse(answer.modelOutput))
        answers.set(answer.recordId, answer.modelOutput);
    }
  }
  return answers;
}

function isResponse(value: unknown): value is MessagesResponse {
  return (
    typeof value === 'object' && value !== null && Array.isArray((value as { content?: unknown }).content)
  );
}
