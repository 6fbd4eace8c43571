import { legacyResultLocation } from '../contract/storage-layout.ts';
import { mapWithLimit } from '../core/concurrency.ts';
import type { RecordLedger } from '../core/ledger.ts';
import type { CountedEntry, JobRecord, StoredResult } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import { parseLegacyResult, parseResultSet } from '../messages/result-set.ts';

export interface ResultReading {
  /** Result objects read at once. */
  readonly readsInFlight: number;
  /** Lines taken together: their result sets are read before the first of them is given. */
  readonly windowLines: number;
}

/** Sets kept for lines still to come; past this, they are dropped and read again when needed. */
const MAX_KEPT_SETS = 1_024;

/**
 * A job's counted results after `afterLine`, in line order: the ledger says where each is (a result set, or
 * an object of its own for results stored by earlier versions), and each set is read once while lines it
 * holds are still to come. Memory holds one window of lines and the sets that reach past it.
 */
export async function* resultsInOrder(
  job: Pick<JobRecord, 'jobId' | 'source'>,
  ports: { readonly store: ObjectStore; readonly ledger: Pick<RecordLedger, 'countedRecords'> },
  afterLine: number,
  reading: ResultReading,
): AsyncGenerator<StoredResult> {
  const kept = new Map<string, SetContents>();
  let window: CountedEntry[] = [];
  for await (const entry of ports.ledger.countedRecords(job.jobId, afterLine)) {
    window.push(entry);
    if (window.length < reading.windowLines) continue;
    yield* resultsOfWindow(window, job, ports.store, kept, reading);
    window = [];
  }
  yield* resultsOfWindow(window, job, ports.store, kept, reading);
}

/** A result set's results by line, and its last line: once past it, the set is needed no more. */
interface SetContents {
  readonly byLine: ReadonlyMap<number, StoredResult>;
  readonly lastLine: number;
}

async function* resultsOfWindow(
  window: readonly CountedEntry[],
  job: Pick<JobRecord, 'jobId' | 'source'>,
  store: ObjectStore,
  kept: Map<string, SetContents>,
  reading: ResultReading,
): AsyncGenerator<StoredResult> {
  const last = window.at(-1);
  if (last === undefined) return;
  const unread = [
    ...new Set(
      window.flatMap(({ resultSet }) => (resultSet === undefined || kept.has(resultSet) ? [] : resultSet)),
    ),
  ];
  const legacy = window.filter(({ resultSet }) => resultSet === undefined);
  const [sets, ownObjects] = await Promise.all([
    mapWithLimit(
      unread,
      reading.readsInFlight,
      async (key) => [key, await readSet(store, job, key)] as const,
    ),
    mapWithLimit(legacy, reading.readsInFlight, (entry) => readLegacy(store, job, entry.lineNumber)),
  ]);
  for (const [key, contents] of sets) kept.set(key, contents);
  const legacyByLine = new Map(ownObjects.map((result) => [result.completion.lineNumber, result]));
  for (const { lineNumber, resultSet } of window) {
    const result =
      resultSet === undefined ? legacyByLine.get(lineNumber) : kept.get(resultSet)?.byLine.get(lineNumber);
    if (result === undefined)
      throw new Error(`the result of line ${lineNumber} vanished during finalization`);
    yield result;
  }
  for (const [key, contents] of kept) if (contents.lastLine <= last.lineNumber) kept.delete(key);
  if (kept.size > MAX_KEPT_SETS) kept.clear();
}

async function readSet(
  store: ObjectStore,
  job: Pick<JobRecord, 'source'>,
  key: string,
): Promise<SetContents> {
  const bytes = await store.read({ bucket: job.source.bucket, key });
  if (bytes === undefined) throw new Error(`the result set ${key} vanished during finalization`);
  const results = parseResultSet(bytes, key);
  return {
    byLine: new Map(results.map((result) => [result.completion.lineNumber, result])),
    lastLine: Math.max(0, ...results.map((result) => result.completion.lineNumber)),
  };
}

async function readLegacy(
  store: ObjectStore,
  job: Pick<JobRecord, 'jobId' | 'source'>,
  lineNumber: number,
): Promise<StoredResult> {
  const location = legacyResultLocation(job, lineNumber);
  const bytes = await store.read(location);
  if (bytes === undefined) throw new Error(`the result of line ${lineNumber} vanished during finalization`);
  return parseLegacyResult(bytes, location.key);
}
