import type { Catalog } from '../catalog/catalog.ts';
import { batchPrefix, lineKey, partPrefixes } from '../contract/storage-layout.ts';
import type { JobRecord } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import { PipelineError } from '../errors.ts';
import type { PromptRecord } from '../input/records.ts';
import { parseStagedRecord, type StagedRecord, stagedRecordLine } from '../messages/staged-record.ts';
import { resolveModel } from '../models/resolve-model.ts';
import { buildInvocation } from '../request/build-request.ts';

/** A record staged for batch inference: its Bedrock batch input line, and the record it stands for. */
export interface BatchEntry extends StagedRecord {
  readonly modelInput: Record<string, unknown>;
}

/**
 * A job's staged records are cut into parts by line number: part k holds the staged records of lines
 * k x recordsPerPart + 1 to (k + 1) x recordsPerPart, so a part never holds more than a batch job may, and a
 * chunk read again after a crash lands in the same part.
 */
export function batchPartOf(lineNumber: number, recordsPerPart: number): number {
  return Math.floor((lineNumber - 1) / recordsPerPart);
}

/** The recordId a staged record carries through Bedrock: its line number as keys spell it. */
export function batchRecordId(lineNumber: number): string {
  return lineKey(lineNumber);
}

/**
 * Builds a record's batch entry: the InvokeModel body the on-demand worker would send, for the job's own
 * model. A record that names another model, or that the request rules refuse, runs on demand instead (the
 * worker gives it the same result it would have anyway).
 */
export function batchEntryOf(
  job: JobRecord,
  record: PromptRecord,
  staged: StagedRecord,
  catalog: Catalog,
): BatchEntry | undefined {
  try {
    const invocation = buildInvocation(record, job.settings, catalog);
    if (invocation.modelId !== resolveModel(job.settings, catalog).modelId) return undefined;
    return { ...staged, modelInput: invocation.body };
  } catch (error) {
    if (error instanceof PipelineError) return undefined;
    throw error;
  }
}

/**
 * Writes a chunk's batch entries, per part: the Bedrock batch input lines, and beside them the records they
 * stand for. Named by the chunk's first line, so a chunk staged again after a crash replaces itself.
 */
export async function stageChunk(
  job: JobRecord,
  entries: readonly BatchEntry[],
  store: ObjectStore,
  recordsPerPart: number,
): Promise<void> {
  const byPart = new Map<number, BatchEntry[]>();
  for (const entry of entries) {
    const part = batchPartOf(entry.message.lineNumber, recordsPerPart);
    byPart.set(part, [...(byPart.get(part) ?? []), entry]);
  }
  await Promise.all(
    [...byPart].map(async ([part, partEntries]) => {
      const prefixes = partPrefixes(job.jobId, part);
      const name = `${batchRecordId(partEntries[0]?.message.lineNumber ?? 0)}.jsonl`;
      const inputLine = (entry: BatchEntry) =>
        JSON.stringify({ recordId: batchRecordId(entry.message.lineNumber), modelInput: entry.modelInput });
      const { bucket } = job.source;
      await store.put(
        { bucket, key: `${prefixes.input}${name}` },
        `${partEntries.map(inputLine).join('\n')}\n`,
        'application/jsonl',
      );
      await store.put(
        { bucket, key: `${prefixes.records}${name}` },
        `${partEntries.map(stagedRecordLine).join('\n')}\n`,
        'application/jsonl',
      );
    }),
  );
}

/** The records staged in a part, by their batch recordId. */
export async function stagedRecordsOf(
  job: JobRecord,
  part: number,
  store: ObjectStore,
): Promise<Map<string, StagedRecord>> {
  const { bucket } = job.source;
  const staged = new Map<string, StagedRecord>();
  for await (const key of store.list(bucket, partPrefixes(job.jobId, part).records)) {
    const body = await store.read({ bucket, key });
    const lines = Buffer.from(body ?? new Uint8Array())
      .toString('utf8')
      .split('\n');
    for (const [index, line] of lines.entries()) {
      if (line === '') continue;
      const record = parseStagedRecord(line, `${key} line ${index + 1}`);
      staged.set(batchRecordId(record.message.lineNumber), record);
    }
  }
  return staged;
}

/** The size of a part's batch input. */
export async function stagedInputBytes(job: JobRecord, part: number, store: ObjectStore): Promise<number> {
  const { bucket } = job.source;
  let bytes = 0;
  for await (const key of store.list(bucket, partPrefixes(job.jobId, part).input))
    bytes += (await store.head({ bucket, key }))?.size ?? 0;
  return bytes;
}

/** The parts a job staged records in, from the folders under its batch prefix. */
export async function stagedParts(job: JobRecord, store: ObjectStore): Promise<number[]> {
  const parts = new Set<number>();
  for await (const key of store.list(job.source.bucket, batchPrefix(job.jobId))) {
    const match = /part-(\d+)\/records\//.exec(key);
    if (match !== null) parts.add(Number(match[1]));
  }
  return [...parts].sort((a, b) => a - b);
}
