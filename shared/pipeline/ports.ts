import type { BucketState } from '../budget/bucket.ts';
import type { DeadlineAlarm } from '../messages/deadline-alarm.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { MessagesResponse } from '../output/result-records.ts';
import type {
  Announcement,
  BatchPart,
  BatchPartState,
  BudgetReservation,
  CachedPrefix,
  CountedEntry,
  CountedRecord,
  DecompressCheckpoint,
  FinalizeCheckpoint,
  JobEnding,
  JobRecord,
  JobUpdate,
  LeaseResult,
  ObjectInfo,
  ObjectLocation,
  ReadingLease,
  ReadProgress,
  Release,
  UploadedPart,
} from './model.ts';

/**
 * The small interfaces the pipeline's domain talks to AWS through. Adapters in functions/adapters implement
 * them with the AWS SDK; tests use in-memory ones.
 */

export interface ObjectStore {
  /** undefined when there is no such object. */
  head(location: ObjectLocation): Promise<ObjectInfo | undefined>;
  /** The object's bytes from `startByte` to the end, as a stream. Throws InputChangedError (see etag). */
  stream(location: ObjectLocation, startByte: number): AsyncIterable<Uint8Array>;
  /** Bytes [start, end) of the object. Throws InputChangedError (see etag). */
  readRange(location: ObjectLocation, start: number, end: number): Promise<Uint8Array>;
  /** undefined when there is no such object. */
  read(location: ObjectLocation): Promise<Uint8Array | undefined>;
  put(location: ObjectLocation, body: string | Uint8Array, contentType: string): Promise<void>;
  /** Keys under `prefix` (after `startAfter`, when given), in lexicographic order. */
  list(bucket: string, prefix: string, startAfter?: string): AsyncIterable<string>;
  /**
   * A multipart upload that outlives an invocation: parts may be sent by several invocations, concurrently,
   * and the object appears only when the upload is completed with every part's ETag.
   */
  startMultipart(location: ObjectLocation, contentType: string): Promise<string>;
  uploadPart(location: ObjectLocation, uploadId: string, part: number, body: Uint8Array): Promise<string>;
  /**
   * Completes the upload. Completing it again is no error: S3 forgets a completed upload, so a caller that
   * died right after completing it finds no such upload, and the object in place, when it tries again.
   */
  completeMultipart(
    location: ObjectLocation,
    uploadId: string,
    parts: readonly UploadedPart[],
  ): Promise<void>;
}

export interface RecordQueue {
  /**
   * Sends every message, retrying entries the queue refused; throws if some still fail. A message with a
   * delay (`delaysSeconds`, one per message, up to 900) becomes visible that much later.
   */
  send(messages: readonly RecordMessage[], delaysSeconds?: readonly number[]): Promise<void>;
  changeVisibility(receiptHandle: string, seconds: number): Promise<void>;
}

/** Where a call goes: the source region it is made from and the model id called there (a quota pool). */
export interface ModelTarget {
  readonly region: string;
  readonly modelId: string;
}

export interface ModelInvoker {
  invoke(target: ModelTarget, bodyJson: string, signal: AbortSignal): Promise<MessagesResponse>;
  /**
   * The input tokens Bedrock counts for an InvokeModel body (CountTokens: free, no quota spent); the target's
   * model id is the foundation model's.
   */
  countTokens(target: ModelTarget, bodyJson: string, signal: AbortSignal): Promise<number>;
}

export interface EventPublisher {
  publish(detailType: string, detail: Record<string, unknown>): Promise<void>;
}

/** Starts the finalizer for a job (a queue message, an async invocation...). */
export interface FinalizeTrigger {
  trigger(jobId: string): Promise<void>;
}

/** Asks for the rest of a large file to be read by a new invocation. */
export interface EnqueueContinuation {
  continueLater(jobId: string): Promise<void>;
}

/** Jobs as people look for them: the newest, and the one an object they uploaded started. */
export interface JobDirectory {
  /** The newest jobs first, at most `limit`. */
  recentJobs(limit: number): Promise<JobRecord[]>;
  /** The newest job of the object at `bucket`/`key`, whichever of its versions it runs. */
  newestJobOf(source: { readonly bucket: string; readonly key: string }): Promise<JobRecord | undefined>;
}

/** The jobs: their creation, the reading of their files, their totals, finalization and end. */
export interface JobLedger {
  createJob(job: JobRecord): Promise<boolean>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  leaseReading(jobId: string, lease: ReadingLease): Promise<JobRecord | undefined>;
  releaseReading(jobId: string, owner: string): Promise<void>;
  saveReadProgress(jobId: string, progress: ReadProgress, lease: ReadingLease): Promise<boolean>;
  saveDecompressing(jobId: string, checkpoint: DecompressCheckpoint, lease: ReadingLease): Promise<boolean>;
  /** The whole copy, pinned; with a notice when the compressed file was cut short. */
  saveDecompressed(
    jobId: string,
    location: ObjectLocation,
    lease: ReadingLease,
    notice?: string,
  ): Promise<boolean>;
  failReading(
    jobId: string,
    ending: Required<JobEnding<'failed' | 'superseded'>>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean>;
  setTotal(jobId: string, totalRecords: number): Promise<JobRecord>;
  saveFinalizeCheckpoint(jobId: string, checkpoint: FinalizeCheckpoint): Promise<void>;
  claimFinalization(jobId: string): Promise<boolean>;
  finishJob(
    jobId: string,
    ending: JobEnding<'completed' | 'canceled' | 'superseded'>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean>;
  markAnnounced(jobId: string): Promise<void>;
  /** Asks a running job to stop; `reason` says why when no one asked (its spending cap). */
  cancelJob(jobId: string, reason?: string): Promise<boolean>;
  listActiveJobs(): AsyncIterable<JobRecord>;
  /**
   * Claims the cache write of a job's shared prefix for one model: "write" for the claimant, "written" when
   * a write newer than `freshAfter` stands, "busy" while another worker's claim holds.
   */
  claimPrefixWrite(
    jobId: string,
    modelId: string,
    claim: { owner: string; until: number; freshAfter: number; now: number },
  ): Promise<'write' | 'written' | 'busy'>;
  markPrefixWritten(jobId: string, modelId: string, at: number): Promise<void>;
  /** Records the prefixes a job's records share, once: false when they were recorded before. */
  setSharedPrefixes(jobId: string, prefixes: Readonly<Record<string, CachedPrefix>>): Promise<boolean>;
  /** Sets a job's batch parts, once: false when they were set before (a retried read finds them). */
  planBatchParts(jobId: string, parts: Readonly<Record<string, BatchPart>>): Promise<boolean>;
  /** Moves a batch part on, if it is still in one of `from`: false when another step moved it first. */
  moveBatchPart(jobId: string, from: readonly BatchPartState[], next: BatchPart): Promise<boolean>;
}

/** The records: their attempts (leases, counted per failure class) and their completion, counted once. */
export interface RecordLedger {
  /** Which of the job's records, by line number, are done: one read for a worker's whole batch. */
  doneRecords(jobId: string, lineNumbers: readonly number[]): Promise<ReadonlySet<number>>;
  /** Takes the record for an attempt that will store its result in `resultSet` (the set's key). */
  leaseRecord(
    jobId: string,
    lineNumber: number,
    owner: string,
    leaseSeconds: number,
    resultSet: string,
  ): Promise<LeaseResult>;
  releaseRecord(jobId: string, lineNumber: number, owner: string, release: Release): Promise<void>;
  completeRecords(updates: readonly JobUpdate[]): Promise<readonly CountedRecord[]>;
  /** The job's counted records after line `afterLine`, in line order. */
  countedRecords(jobId: string, afterLine: number): AsyncIterable<CountedEntry>;
}

/** The record ids a file has used, so that a repeated one is found across invocations. */
export interface RecordIdClaims {
  claimRecordId(jobId: string, recordId: string, lineNumber: number): Promise<number | undefined>;
}

/**
 * What the deployment has spent each day (UTC): completing records adds their counted cost to the day they
 * are counted on, in the same write, so a day's figure counts each record once.
 */
export interface DailySpend {
  /** Nano-USD counted for records completed on `day` (YYYY-MM-DD, UTC); 0 for a day with none. */
  spentOn(day: string): Promise<number>;
}

/** The job ledger: jobs, records and record ids, in one store, and the spend they add up to each day. */
export interface Ledger extends JobLedger, RecordLedger, RecordIdClaims, DailySpend {}

/**
 * The token budget all workers share, per quota pool (source region and model id): the quota as a bucket of
 * one minute's tokens that refills continuously, as Bedrock keeps it.
 */
export interface TokenBudget {
  /**
   * Takes tokens for calls, `tokens` each, in order, for as many of them as can start by `latestStart`, in
   * one write: the reservation says when each granted call may start.
   */
  reserve(key: string, tokens: readonly number[], latestStart: number): Promise<BudgetReservation>;
  /** Turns a reservation into what Bedrock charged for the calls made with it. */
  settle(reservation: BudgetReservation, chargedTokens: number): Promise<void>;
  /** Bedrock throttled a call the budget allowed: another application spends this quota too; spend less. */
  recordThrottle(key: string): Promise<void>;
  /** Bedrock's daily quota is spent: nothing under `key` starts before `until`. */
  pauseUntil(key: string, until: number): Promise<void>;
  /**
   * When all tokens taken under `key` so far may be spent: tokens given back since a grant can make it
   * sooner than the grant said. A read, no write.
   */
  spendableFrom(key: string): Promise<number>;
  /**
   * The bucket under `key` as this worker last saw it (full at its quota when never seen): no read, no write.
   * Undefined for a pool left out for having no quota: no call is placed there.
   */
  lastSeen(key: string): Promise<BucketState | undefined>;
}

export interface DeadLetters {
  /** Messages waiting in the record queue's DLQ: records the code could not handle at all. */
  count(): Promise<number>;
}

/** Wakes the batch watcher for a job at its deadline (or nearer to it, when it is further off than a wait). */
export interface DeadlineAlarms {
  set(alarm: DeadlineAlarm, now: number): Promise<void>;
}

/** Bedrock batch inference jobs (the control plane), as the pipeline submits and watches them. */
export interface BatchJobs {
  /** Starts a job unless one with this client request token exists already: its ARN either way. */
  submit(request: BatchJobRequest): Promise<string>;
  describe(jobArn: string): Promise<{ readonly status: string; readonly message?: string | undefined }>;
  stop(jobArn: string): Promise<void>;
}

export interface BatchJobRequest {
  readonly jobName: string;
  readonly modelId: string;
  readonly inputUri: string;
  readonly outputUri: string;
  readonly timeoutHours: number;
  /** The same for every submit of one part: a retried submit never starts a second billed job. */
  readonly clientRequestToken: string;
}
