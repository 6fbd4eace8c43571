// Over 250 lines: starting a job, reading its file in chunks under a lease, and failing it cleanly are one
// flow; decompression lives in decompress.ts.
import { randomUUID } from 'node:crypto';
import { startingLane } from '../batch/lane.ts';
import { launchBatchParts } from '../batch/launch.ts';
import { type BatchEntry, batchEntryOf, stageChunk } from '../batch/staging.ts';
import { prefixTtl } from '../caching/cache-ttl.ts';
import { findSharedPrefixes } from '../caching/shared-prefix.ts';
import { type Catalog, catalogInUse } from '../catalog/catalog.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../config.ts';
import { JOB_END_EVENTS, JOB_STARTED } from '../contract/job-events.ts';
import { DEFAULT_LANE } from '../contract/lanes.ts';
import { type Clock, isoTime, systemClock } from '../core/clock.ts';
import type { BatchParts, JobReading, Jobs, PrefixCache, RecordIdClaims } from '../core/ledger.ts';
import type {
  Announcement,
  JobEnding,
  JobRecord,
  JobSettings,
  ObjectLocation,
  ReadingLease,
  ReadProgress,
} from '../core/model.ts';
import type {
  BatchJobs,
  DeadlineAlarms,
  EnqueueContinuation,
  EventPublisher,
  RecordQueue,
} from '../core/ports.ts';
import { ConfigurationError, InputChangedError, PipelineError } from '../errors.ts';
import type { ObjectCreated } from '../events/object-created.ts';
import { DEFAULT_MAX_ERROR_RATE, errorRateProblem, InvalidLines } from '../input/error-rate.ts';
import {
  DEFAULT_MAX_DECOMPRESSED_BYTES,
  FILE_HEAD_BYTES,
  fileHeadProblem,
  inputNameProblem,
} from '../input/file-check.ts';
import { type RawLine, splitLines } from '../input/line-splitter.ts';
import { parseLine } from '../input/parse-line.ts';
import { comparableId, duplicateIdError } from '../input/read-records.ts';
import { derivedRecordId, type LineError, type LineResult } from '../input/records.ts';
import {
  INLINE_MESSAGE_BYTES,
  RECORD_MESSAGE_VERSION,
  type RecordMessage,
} from '../messages/record-message.ts';
import { lineErrorOutcome, subjectOf } from '../output/result-records.ts';
import { buildInvocation } from '../request/build-request.ts';
import { type AnnouncePorts, announce } from './announce.ts';
import { type CompletionPorts, completionOf, countJobResults, finalizeIfDone } from './complete.ts';
import { decompressOnce } from './decompress.ts';
import { jobIdOf, jobSettingsFrom, newJobRecord, readableOf } from './job.ts';
import { supersededEnding } from './superseded.ts';

export interface EnqueuePorts extends CompletionPorts {
  readonly ledger: CompletionPorts['ledger'] &
    Pick<Jobs, 'createJob' | 'setTotal'> &
    JobReading &
    AnnouncePorts['ledger'] &
    Pick<PrefixCache, 'setSharedPrefixes'> &
    BatchParts &
    RecordIdClaims;
  readonly queue: RecordQueue;
  readonly events: EventPublisher;
  readonly continuation: EnqueueContinuation;
  /** Bedrock batch inference, where the deployment has it: without it every file runs on demand. */
  readonly batchJobs?: BatchJobs;
  /** Wakes the batch watcher at a batch-lane job's deadline. */
  readonly alarms?: DeadlineAlarms;
}

export interface EnqueueSettings {
  readonly defaults: JobSettings;
  /** The longest line accepted: Bedrock's request body limit. */
  readonly maxLineBytes: number;
  /** A chunk of lines is parsed, checked and sent together, then the read position is saved. */
  readonly chunkLines?: number;
  readonly chunkBytes?: number;
  readonly readingLeaseSeconds?: number;
  readonly clock?: Pick<Clock, 'now'>;
  readonly catalog?: Catalog;
  /** The quota records drain at: a shared prefix gets the 1-hour TTL when its file takes longer to drain. */
  readonly tokensPerMinute?: number;
  /** The most a compressed input may decompress to. */
  readonly maxDecompressedBytes?: number;
}

export type EnqueueOutcome =
  | { readonly kind: 'read'; readonly jobId: string; readonly totalRecords: number }
  | { readonly kind: 'continued'; readonly jobId: string; readonly recordsRead: number }
  | { readonly kind: 'duplicate'; readonly jobId: string }
  | { readonly kind: 'taken-over'; readonly jobId: string }
  | { readonly kind: 'failed'; readonly jobId: string; readonly reason: string }
  | { readonly kind: 'missing'; readonly keys: readonly string[] }
  | { readonly kind: 'ignored'; readonly key: string; readonly reason: string };

/**
 * Starts the job for an uploaded file: finds the object (the event's key may be encoded), derives the job id
 * from its version, takes the file's options from its metadata, creates the job unless a duplicate event
 * already did, and reads the file. `shouldStop` says when the invocation is near its deadline.
 */
export async function startJob(
  event: ObjectCreated,
  ports: EnqueuePorts,
  settings: EnqueueSettings,
  shouldStop: () => boolean,
  reader: string = randomUUID(),
): Promise<EnqueueOutcome> {
  const found = await findObject(event, ports);
  if (found === undefined) return { kind: 'missing', keys: event.keyCandidates };
  const { location, info } = found;
  if (location.key.endsWith('/')) return { kind: 'ignored', key: location.key, reason: 'a folder marker' };
  const jobId = jobIdOf(location.bucket, location.key, info.versionId ?? info.etag);
  const now = isoTime(settings.clock ?? systemClock);
  const draft = newJobRecord(jobId, location, settings.defaults, now);

  const head =
    info.size === 0
      ? new Uint8Array()
      : await ports.store.readRange(location, 0, Math.min(info.size, FILE_HEAD_BYTES));
  const fileProblem = inputNameProblem(location.key) ?? fileHeadProblem(location.key, head);
  if (fileProblem !== undefined) return rejectFile(draft, fileProblem, ports);
  let jobSettings: JobSettings;
  try {
    jobSettings = jobSettingsFrom(info.metadata, settings.defaults);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    return rejectFile(draft, error.problems.join('; '), ports);
  }
  // A duplicate event, or a retry of an invocation that failed part way, reads on from the saved offset.
  if (await ports.ledger.createJob({ ...draft, settings: jobSettings }))
    await sayStarted(draft, jobSettings, ports);
  return readOn(jobId, ports, settings, shouldStop, reader);
}

/**
 * Publishes that the job started. Only the invocation that created the job says so, and a failure to say so
 * does not stop the job: its end is the event that is guaranteed (kept in the ledger until published).
 */
async function sayStarted(job: JobRecord, jobSettings: JobSettings, ports: EnqueuePorts): Promise<void> {
  const detail = {
    jobId: job.jobId,
    input: `s3://${job.source.bucket}/${job.source.key}`,
    model: jobSettings.model,
    lane: jobSettings.lane ?? DEFAULT_LANE,
    createdAt: job.createdAt,
  };
  await ports.events.publish(JOB_STARTED, detail).catch(() => undefined);
}

/**
 * A file that cannot run at all (its name, its content as a whole, its options) is a job that failed at
 * once, with the reason in a "Batch Job Failed" event: the uploader hears why instead of nothing.
 */
async function rejectFile(draft: JobRecord, reason: string, ports: EnqueuePorts): Promise<EnqueueOutcome> {
  const failed: JobRecord = {
    ...draft,
    status: 'failed',
    failureReason: reason,
    finishedAt: draft.createdAt,
    announcement: jobFailed(draft.jobId, draft.source, { status: 'failed', reason }),
  };
  // A duplicate event finds the job failed already; it publishes the event only if that is still pending.
  const created = await ports.ledger.createJob(failed);
  await announce(ports, created ? failed : ((await ports.ledger.getJob(draft.jobId)) ?? draft));
  return { kind: 'failed', jobId: draft.jobId, reason };
}

/** Reads on from where an earlier invocation of a large file stopped. */
export async function continueJob(
  jobId: string,
  ports: EnqueuePorts,
  settings: EnqueueSettings,
  shouldStop: () => boolean,
  reader: string = randomUUID(),
): Promise<EnqueueOutcome> {
  return readOn(jobId, ports, settings, shouldStop, reader);
}

/** How long a reader holds a file without saving progress before another may take over. */
export const READING_LEASE_SECONDS = 120;

/**
 * Reads the job's file from its saved offset if it is still enqueuing and no other reader holds it. A
 * failure gives the lease back first, so the retry that follows reads on at once.
 */
async function readOn(
  jobId: string,
  ports: EnqueuePorts,
  settings: EnqueueSettings,
  shouldStop: () => boolean,
  owner: string,
): Promise<EnqueueOutcome> {
  const lease = { owner, leaseSeconds: settings.readingLeaseSeconds ?? READING_LEASE_SECONDS };
  const job = await ports.ledger.leaseReading(jobId, lease);
  if (job === undefined) return { kind: 'duplicate', jobId };
  try {
    const readable = await decompressOnce(job, ports, lease, {
      maxBytes: settings.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
      shouldStop,
    });
    if (readable.kind === 'taken-over') return { kind: 'taken-over', jobId };
    if (readable.kind === 'paused') return continueLater(jobId, 0, ports, owner);
    if (readable.kind === 'unreadable') return failReading(job, readable.reason, ports, settings);
    return await readFile(readable.job, ports, settings, shouldStop, lease);
  } catch (error) {
    if (error instanceof InputChangedError)
      return endReading(job, await supersededEnding(job.jobId, job.source, ports.store), ports, settings);
    await ports.ledger.releaseReading(jobId, owner).catch(() => {});
    throw error;
  }
}

/** The invocation is near its deadline: it gives the file back and asks for another to read on. */
async function continueLater(
  jobId: string,
  recordsRead: number,
  ports: EnqueuePorts,
  owner: string,
): Promise<EnqueueOutcome> {
  await ports.ledger.releaseReading(jobId, owner);
  await ports.continuation.continueLater(jobId);
  return { kind: 'continued', jobId, recordsRead };
}

/** The file cannot be read on as the job began it: the job fails with the reason, once, and says so. */
function failReading(
  job: JobRecord,
  reason: string,
  ports: EnqueuePorts,
  settings: EnqueueSettings,
): Promise<EnqueueOutcome> {
  return endReading(job, { status: 'failed', reason }, ports, settings);
}

/** Reading ends for good (the job failed, or a newer upload superseded it), once, with its event. */
async function endReading(
  job: JobRecord,
  ending: Required<JobEnding<'failed' | 'superseded'>> & { readonly supersededBy?: string },
  ports: EnqueuePorts,
  settings: EnqueueSettings,
): Promise<EnqueueOutcome> {
  const finishedAt = isoTime(settings.clock ?? systemClock);
  const announcement = jobFailed(job.jobId, job.source, ending);
  const { supersededBy: _, ...stored } = ending;
  if (await ports.ledger.failReading(job.jobId, stored, finishedAt, announcement))
    await announce(ports, { jobId: job.jobId, announcement });
  return { kind: 'failed', jobId: job.jobId, reason: ending.reason };
}

/** The event of a job that ended before its file was read: failed, or superseded by a newer upload. */
function jobFailed(
  jobId: string,
  source: ObjectLocation,
  ending: Required<JobEnding<'failed' | 'superseded'>> & { readonly supersededBy?: string },
): Announcement {
  return {
    detailType: JOB_END_EVENTS[ending.status],
    detail: { jobId, input: `s3://${source.bucket}/${source.key}`, ...ending },
  };
}

async function findObject(event: ObjectCreated, ports: EnqueuePorts) {
  for (const key of event.keyCandidates) {
    const location: ObjectLocation = { bucket: event.bucket, key, versionId: event.versionId };
    const info = await ports.store.head(location);
    if (info !== undefined) {
      const pinned = { ...location, versionId: info.versionId ?? event.versionId, etag: info.etag };
      return { location: pinned, info };
    }
  }
  return undefined;
}

/** The first chunk of a file: one worker batch. */
const FIRST_CHUNK_LINES = 20;

async function readFile(
  readJob: JobRecord,
  ports: EnqueuePorts,
  settings: EnqueueSettings,
  shouldStop: () => boolean,
  lease: ReadingLease,
): Promise<EnqueueOutcome> {
  let job = readJob;
  const chunkLines = settings.chunkLines ?? 500;
  const chunkBytes = settings.chunkBytes ?? 8 * 1024 * 1024;
  // Small chunks first, doubling: the first records reach the workers at once, the rest in large chunks.
  let chunkLimit = Math.min(chunkLines, FIRST_CHUNK_LINES);
  let progress: ReadProgress = job;
  const invalid = new InvalidLines();
  let chunk: RawLine[] = [];
  let bytesInChunk = 0;

  const maxErrorRate = job.settings.maxErrorRate ?? DEFAULT_MAX_ERROR_RATE;

  /**
   * Sends the chunk and saves the place after it. Reading ends early when another reader has taken the file
   * over, or when too many of its records are invalid.
   */
  const flush = async (): Promise<EnqueueOutcome | undefined> => {
    const last = chunk.at(-1);
    if (last === undefined) return undefined;
    const enqueued = await enqueueChunk(job, chunk, ports, settings);
    job = enqueued.job;
    invalid.add(enqueued.errors);
    // Resume at the end of the last line; the rest of that line (its newline) reads as blank and is skipped.
    progress = {
      readOffset: last.byteEnd,
      readLine: last.lineNumber,
      recordsRead: progress.recordsRead + chunk.length,
      invalidLines: progress.invalidLines + enqueued.errors.length,
    };
    chunk = [];
    bytesInChunk = 0;
    if (!(await ports.ledger.saveReadProgress(job.jobId, progress, lease)))
      return { kind: 'taken-over', jobId: job.jobId };
    const problem = errorRateProblem(progress, maxErrorRate, invalid);
    return problem === undefined ? undefined : failReading(job, problem, ports, settings);
  };

  const lines = splitLines(ports.store.stream(readableOf(job), job.readOffset), {
    maxLineBytes: settings.maxLineBytes,
    startByte: job.readOffset,
    startLineNumber: job.readLine,
  });
  for await (const line of lines) {
    chunk.push(line);
    bytesInChunk += line.bytes?.length ?? 0;
    if (chunk.length >= chunkLimit || bytesInChunk >= chunkBytes) {
      const ended = await flush();
      if (ended !== undefined) return ended;
      chunkLimit = Math.min(chunkLines, chunkLimit * 2);
      if (shouldStop()) return continueLater(job.jobId, progress.recordsRead, ports, lease.owner);
    }
  }
  return (await flush()) ?? finishReading(job, progress.recordsRead, ports, settings);
}

/**
 * The whole file is read: its total is known, a batch-lane file's parts are launched, and a file whose
 * records all finished already is finalized. A file with no records fails.
 */
async function finishReading(
  job: JobRecord,
  recordsRead: number,
  ports: EnqueuePorts,
  settings: EnqueueSettings,
): Promise<EnqueueOutcome> {
  if (recordsRead === 0) {
    const name = job.source.key.slice(job.source.key.lastIndexOf('/') + 1);
    return failReading(
      job,
      `${name} has no records: it is empty or holds only blank lines.`,
      ports,
      settings,
    );
  }
  const updated = await ports.ledger.setTotal(job.jobId, recordsRead);
  if (ports.batchJobs !== undefined && startingLane(job.settings, catalogOf(settings)) === 'staged') {
    await launchBatchParts(
      updated,
      { ...ports, batchJobs: ports.batchJobs },
      {
        catalog: catalogOf(settings),
        clock: settings.clock ?? systemClock,
      },
    );
  }
  if (updated.doneRecords >= recordsRead) await finalizeIfDone(ports, job.jobId);
  return { kind: 'read', jobId: job.jobId, totalRecords: recordsRead };
}

function catalogOf(settings: EnqueueSettings): Catalog {
  return settings.catalog ?? catalogInUse();
}

/**
 * Parses a chunk, settles duplicate ids (in the chunk, then against the ledger), records errors, sends the
 * rest. The job's first chunk also decides the prefix its records share: the job as it stands after is
 * returned, with the chunk's invalid lines.
 */
async function enqueueChunk(
  job: JobRecord,
  chunk: readonly RawLine[],
  ports: EnqueuePorts,
  settings: EnqueueSettings,
): Promise<{ job: JobRecord; errors: readonly LineError[] }> {
  const checked = await claimIds(job, chunk, ports, settings);
  const catalog = catalogOf(settings);
  const staging = ports.batchJobs !== undefined && startingLane(job.settings, catalog) === 'staged';
  const decided = await decideSharedPrefixes(job, chunk, checked, ports, settings);
  const messages: RecordMessage[] = [];
  const staged: BatchEntry[] = [];
  const errors: LineError[] = [];
  checked.forEach((result, index) => {
    const line = chunk[index];
    if (line === undefined) return;
    if (!result.ok) {
      errors.push(result.error);
      return;
    }
    const message = recordMessage(job, result.record, line);
    const entry = staging
      ? batchEntryOf(job, result.record, { message, subject: subjectOf(result.record) }, catalog)
      : undefined;
    if (entry === undefined) messages.push(message);
    else staged.push(entry);
  });
  await stageChunk(job, staged, ports.store, catalog.batch.maximumRecordsPerJob);
  const finishedAt = isoTime(settings.clock ?? systemClock);
  await countJobResults(
    ports,
    job,
    errors.map((error) => {
      const outcome = lineErrorOutcome(error);
      return {
        subject: {
          recordId: error.recordId ?? derivedRecordId(error.lineNumber),
          lineNumber: error.lineNumber,
          family: error.family,
        },
        outcome,
        completion: completionOf(error.lineNumber, error.family, outcome),
        timing: { finishedAt, attempts: 0 },
      };
    }),
  );
  await ports.queue.send(messages);
  return { job: decided, errors };
}

/**
 * Once per job, from its first records: the prefix many of them share, per model, which the worker marks for
 * caching (none when the file turns caching off), with its TTL. A retried read finds the decision made.
 */
async function decideSharedPrefixes(
  job: JobRecord,
  chunk: readonly RawLine[],
  checked: readonly LineResult[],
  ports: EnqueuePorts,
  settings: EnqueueSettings,
): Promise<JobRecord> {
  if (job.sharedPrefixes !== undefined) return job;
  const catalog = catalogOf(settings);
  const sample =
    job.settings.cache === 'off'
      ? []
      : checked.flatMap((result) => {
          if (!result.ok) return [];
          try {
            return [
              { invocation: buildInvocation(result.record, job.settings, catalog), body: result.record.body },
            ];
          } catch (error) {
            // A record the request rules refuse gets its error from the worker; it shares nothing.
            if (error instanceof PipelineError) return [];
            throw error;
          }
        });
  const models = new Map(sample.map(({ invocation }) => [invocation.modelId, invocation.resolved.model]));
  const found = findSharedPrefixes(
    sample.map(({ invocation, body }) => ({ modelId: invocation.modelId, body })),
    (modelId) => models.get(modelId)?.minCacheablePrefixTokens ?? Number.POSITIVE_INFINITY,
  );
  const fileRecords = found.length === 0 ? 0 : await estimatedRecords(job, chunk, ports);
  const sharedPrefixes = Object.fromEntries(
    found.map(({ modelId, blocks, fingerprint, tokens }) => {
      const sharing = sample.filter(({ invocation }) => invocation.modelId === modelId);
      const perRecord = sharing.map(
        ({ invocation }) => Math.max(0, invocation.estimate.upper - tokens) + invocation.maxTokens,
      );
      const ttl = prefixTtl({
        ttls: models.get(modelId)?.cacheTtls ?? ['5m'],
        records: (fileRecords * sharing.length) / Math.max(1, sample.length),
        tokensPerRecord: perRecord.reduce((sum, value) => sum + value, 0) / Math.max(1, perRecord.length),
        tokensPerMinute: settings.tokensPerMinute ?? DEFAULT_TOKENS_PER_MINUTE,
      });
      return [modelId, { blocks, fingerprint, tokens, ttl }];
    }),
  );
  if (await ports.ledger.setSharedPrefixes(job.jobId, sharedPrefixes)) return { ...job, sharedPrefixes };
  return (await ports.ledger.getJob(job.jobId)) ?? job;
}

/** The records the whole file holds, estimated from the size of its first lines against the object's. */
async function estimatedRecords(
  job: JobRecord,
  chunk: readonly RawLine[],
  ports: EnqueuePorts,
): Promise<number> {
  const last = chunk.at(-1);
  const first = chunk[0];
  if (last === undefined || first === undefined) return 0;
  const size = (await ports.store.head(readableOf(job)))?.size ?? last.byteEnd;
  return Math.ceil((chunk.length * size) / Math.max(1, last.byteEnd - first.byteStart));
}

/** Each line parsed, a given id claimed for its first line: a later line with the same id is an error. */
async function claimIds(
  job: JobRecord,
  chunk: readonly RawLine[],
  ports: EnqueuePorts,
  settings: EnqueueSettings,
): Promise<LineResult[]> {
  const parsed = chunk.map((line) => parseLine(line.bytes, line.lineNumber, settings.maxLineBytes));
  // A derived id is unique by construction: no given id can take it.
  const givenId = (result: LineResult) =>
    result.ok && !result.record.idDerived ? comparableId(result.record.recordId) : undefined;
  const firstLineOfId = new Map<string, number>();
  for (const result of parsed) {
    const recordId = givenId(result);
    if (result.ok && recordId !== undefined && !firstLineOfId.has(recordId))
      firstLineOfId.set(recordId, result.record.lineNumber);
  }
  const claims = [...firstLineOfId].map(([recordId, lineNumber]) => ({ recordId, lineNumber }));
  const holders = await ports.ledger.claimRecordIds(job.jobId, claims);
  return parsed.map((result) => {
    const recordId = givenId(result);
    if (!result.ok || recordId === undefined) return result;
    const first = firstLineOfId.get(recordId);
    const holder = first === result.record.lineNumber ? holders.get(recordId) : first;
    return holder === undefined ? result : duplicateIdError(result.record, holder);
  });
}

/**
 * The message a record travels as: where its line is in the pinned input, and the line itself, which the
 * queue leaves out when it is too large to ride along (see `recordMessageBody`).
 */
function recordMessage(
  job: JobRecord,
  record: { recordId: string; lineNumber: number },
  line: RawLine,
): RecordMessage {
  const readable = readableOf(job);
  return {
    v: RECORD_MESSAGE_VERSION,
    jobId: job.jobId,
    recordId: record.recordId,
    lineNumber: record.lineNumber,
    source: {
      bucket: readable.bucket,
      key: readable.key,
      ...(readable.versionId === undefined ? {} : { versionId: readable.versionId }),
      ...(readable.etag === undefined ? {} : { etag: readable.etag }),
      byteStart: line.byteStart,
      byteEnd: line.byteEnd,
    },
    ...(line.bytes === undefined || line.bytes.length > INLINE_MESSAGE_BYTES
      ? {}
      : { line: Buffer.from(line.bytes).toString('utf8') }),
  };
}
