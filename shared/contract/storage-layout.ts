import type { JobRecord, ObjectLocation } from '../core/model.ts';

/**
 * Where everything lives in the pipeline's bucket, as the functions, the stack's IAM, the CLI and users see
 * it: uploads under `inputs/`, what users collect under `outputs/`, each job's intermediate objects under
 * `work/<jobId>/`. A key here changes only with a migration: objects written by one version are read by the
 * next.
 */
export const INPUT_PREFIX = 'inputs/';
/** Message batches created through the API: `<id>.json` says what each is; its requests are an input file. */
export const MESSAGE_BATCHES_PREFIX = 'message-batches/';

/** A message batch's requests, as the input file its job reads. */
export function messageBatchInputKey(batchId: string): string {
  return `${INPUT_PREFIX}${MESSAGE_BATCHES_PREFIX}${batchId}.jsonl`;
}

/** What a message batch was created with (see shared/message-batches). */
export function messageBatchRecordKey(batchId: string): string {
  return `${MESSAGE_BATCHES_PREFIX}${batchId}.json`;
}
const OUTPUT_PREFIX = 'outputs/';
const WORK_PREFIX = 'work/' as const;
const RESULTS_FOLDER = 'results';

/**
 * A line number as keys spell it: ten digits, zero-padded, so that keys sort in line order (the ledger's
 * record keys, which the output's order follows, and the record ids a batch job carries).
 */
export function lineKey(lineNumber: number): string {
  return String(lineNumber).padStart(10, '0');
}

/**
 * Where a job writes: `inputs/a/b.jsonl` -> `outputs/a/b.jsonl/<jobId>.jsonl.out` and
 * `outputs/a/b.jsonl/<jobId>.manifest.json.out`. Every upload of a key is a job of its own with its own
 * output, found by job id; a late job never overwrites a newer one's.
 */
export function outputLocations(job: Pick<JobRecord, 'jobId' | 'source'>): {
  output: ObjectLocation;
  manifest: ObjectLocation;
} {
  const { bucket, key } = job.source;
  const relative = key.startsWith(INPUT_PREFIX) ? key.slice(INPUT_PREFIX.length) : key;
  const folder = `${OUTPUT_PREFIX}${relative}/${job.jobId}`;
  return {
    output: { bucket, key: `${folder}.jsonl.out` },
    manifest: { bucket, key: `${folder}.manifest.json.out` },
  };
}

/** Everything a job keeps while it runs: its results, a decompressed input, its batch parts. */
export function workPrefix(jobId: string): string {
  return `${WORK_PREFIX}${jobId}/`;
}

export function resultsPrefix(jobId: string): string {
  return `${workPrefix(jobId)}${RESULTS_FOLDER}/`;
}

/** Every job's results, as an object-key pattern (IAM's `*` for the job id): all the worker writes. */
export const RESULTS_KEY_PATTERN = `${WORK_PREFIX}*/${RESULTS_FOLDER}` as const;

/** Where a result set (the results of records finished together) waits for the finalizer. */
export function resultSetLocation(job: Pick<JobRecord, 'jobId' | 'source'>, setId: string): ObjectLocation {
  return { bucket: job.source.bucket, key: `${resultsPrefix(job.jobId)}sets/${setId}.jsonl` };
}

/** Where versions before result sets stored a record's result on its own. */
export function legacyResultLocation(
  job: Pick<JobRecord, 'jobId' | 'source'>,
  lineNumber: number,
): ObjectLocation {
  return { bucket: job.source.bucket, key: `${resultsPrefix(job.jobId)}${lineKey(lineNumber)}.json` };
}

/** Where a compressed input is decompressed to, once, for its records to be read by byte range. */
export function decompressedLocation(job: Pick<JobRecord, 'jobId' | 'source'>): ObjectLocation {
  return { bucket: job.source.bucket, key: `${workPrefix(job.jobId)}input.jsonl` };
}

/** A job's batch-lane folder: one folder per part. */
export function batchPrefix(jobId: string): string {
  return `${workPrefix(jobId)}batch/`;
}

/** A part's name among a job's batch parts. */
export function batchPartName(part: number): string {
  return `part-${String(part).padStart(5, '0')}`;
}

/** A part's folders: Bedrock reads `input/`, writes under `output/`; `records/` says what each line is. */
export function partPrefixes(jobId: string, part: number) {
  const folder = `${batchPrefix(jobId)}${batchPartName(part)}/`;
  return { folder, input: `${folder}input/`, output: `${folder}output/`, records: `${folder}records/` };
}
