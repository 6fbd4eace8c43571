import type { EndpointKind } from '../catalog/catalog.ts';
import type { RetryClass } from '../failures.ts';
import type { InputFamily } from '../input/records.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { JobTotals } from '../output/manifest.ts';
import type { MessagesResponse, OutputSubject, RecordOutcome } from '../output/result-records.ts';

/**
 * The small interfaces the pipeline's domain talks to AWS through. Adapters in functions/adapters implement
 * them with the AWS SDK; tests use in-memory ones.
 */

export interface ObjectLocation {
  readonly bucket: string;
  readonly key: string;
  readonly versionId?: string | undefined;
  /**
   * The ETag the object had when its job was created: reads of an object that changed since fail with
   * InputChangedError (S3 If-Match), so a job never mixes two uploads, versioned bucket or not.
   */
  readonly etag?: string | undefined;
}

export interface ObjectInfo {
  readonly size: number;
  readonly etag: string;
  readonly versionId: string | undefined;
  /** User metadata (x-amz-meta-*), keys lower-cased. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface ObjectStore {
  /** undefined when there is no such object. */
  head(location: ObjectLocation): Promise<ObjectInfo | undefined>;
  /** The object's bytes from `startByte` to the end, as a stream. Throws InputChangedError (see etag). */
  stream(location: ObjectLocation, startByte: number): AsyncIterable<Uint8Array>;
  /** Bytes [start, end) of the object. Throws InputChangedError (see etag). */
  readRange(location: ObjectLocation, start: number, end: number): Promise<Uint8Array>;
  /** undefined when there is no such object. */
  read(location: ObjectLocation): Promise<Uint8Array | undefined>;
  /** Writes unless the key exists: "exists" means someone wrote it first (S3 If-None-Match: *). */
  putIfAbsent(location: ObjectLocation, body: string): Promise<'written' | 'exists'>;
  put(location: ObjectLocation, body: string | Uint8Array, contentType: string): Promise<void>;
  /** Keys under `prefix` (after `startAfter`, when given), in lexicographic order. */
  list(bucket: string, prefix: string, startAfter?: string): AsyncIterable<string>;
  /**
   * A multipart upload that outlives an invocation: parts may be sent by several invocations, concurrently,
   * and the object appears only when the upload is completed with every part's ETag.
   */
  startMultipart(location: ObjectLocation, contentType: string): Promise<string>;
  uploadPart(location: ObjectLocation, uploadId: string, part: number, body: Uint8Array): Promise<string>;
  completeMultipart(
    location: ObjectLocation,
    uploadId: string,
    parts: readonly UploadedPart[],
  ): Promise<void>;
}

export interface UploadedPart {
  readonly part: number;
  readonly etag: string;
}

/**
 * Where a finalization stands: the output's multipart upload, the parts sent, the last result they hold,
 * and the statistics gathered up to it. A finalizer that stops or dies goes on from here.
 */
export interface FinalizeCheckpoint {
  readonly uploadId: string;
  readonly parts: readonly UploadedPart[];
  readonly lastResultKey: string;
  readonly linesWritten: number;
  readonly stats: unknown;
}

export interface RecordQueue {
  /**
   * Sends every message, retrying entries the queue refused; throws if some still fail. A message with a
   * delay (`delaysSeconds`, one per message, up to 900) becomes visible that much later.
   */
  send(messages: readonly RecordMessage[], delaysSeconds?: readonly number[]): Promise<void>;
  changeVisibility(receiptHandle: string, seconds: number): Promise<void>;
}

export interface ModelInvoker {
  invoke(modelId: string, bodyJson: string, signal: AbortSignal): Promise<MessagesResponse>;
  /** The input tokens Bedrock counts for an InvokeModel body (CountTokens: free, no quota spent). */
  countTokens(foundationModelId: string, bodyJson: string, signal: AbortSignal): Promise<number>;
}

export interface EventPublisher {
  publish(detailType: string, detail: Record<string, unknown>): Promise<void>;
}

/**
 * An event a job has decided to send, kept in the ledger with the status change that decided it and removed
 * once published: a failed publish (or function) leaves it there for the next attempt or the sweeper.
 */
export interface Announcement {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

/** Starts the finalizer for a job (a queue message, an async invocation...). */
export interface FinalizeTrigger {
  trigger(jobId: string): Promise<void>;
}

/** Asks for the rest of a large file to be read by a new invocation. */
export interface EnqueueContinuation {
  continueLater(jobId: string): Promise<void>;
}

export type JobStatus = 'enqueuing' | 'running' | 'finalizing' | 'completed' | 'failed' | 'cancelled';

export interface JobSettings {
  readonly model: string;
  readonly region: string;
  readonly endpoint: EndpointKind;
  readonly defaultMaxTokens: number;
  /** The Bedrock model ids the deployment allows (IAM allows only these); any model when absent. */
  readonly allowedModelIds?: readonly string[];
}

export interface JobRecord {
  readonly jobId: string;
  readonly status: JobStatus;
  readonly source: ObjectLocation;
  readonly settings: JobSettings;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Where reading continues: the byte offset and the number of the line that starts there. */
  readonly readOffset: number;
  readonly readLine: number;
  /** Records (non-blank lines) read so far. */
  readonly recordsRead: number;
  /** Known once the whole file has been read. */
  readonly totalRecords: number | undefined;
  readonly doneRecords: number;
  readonly totals: JobTotals;
  readonly familyCounts: Readonly<Partial<Record<InputFamily, number>>>;
  readonly failureReason: string | undefined;
  readonly finishedAt: string | undefined;
  /** Set by cancel: records not yet run become "canceled" results and the job finishes as cancelled. */
  readonly cancelRequested: boolean;
  /** Attempts sent back to the queue: after a Bedrock failure (throttles among them), or to wait for budget. */
  readonly retries: JobRetries;
  /** The job's final event while it is not yet published. */
  readonly announcement: Announcement | undefined;
  /** A compressed input's decompressed copy, which its records are read from (pinned by its ETag). */
  readonly decompressed: ObjectLocation | undefined;
  /** Where its finalization stands, while it is being finalized in several steps. */
  readonly finalizeCheckpoint: FinalizeCheckpoint | undefined;
}

/** Who reads a job's file now, and for how long without saving progress before another may take over. */
export interface ReadingLease {
  readonly owner: string;
  readonly leaseSeconds: number;
}

export interface JobRetries {
  readonly retried: number;
  readonly bedrockThrottles: number;
  readonly budgetWaits: number;
}

/** What a batch adds to one job: the records it finished and the attempts it sent back or made wait. */
export interface JobUpdate {
  readonly jobId: string;
  readonly completions: readonly RecordCompletion[];
  readonly retries: JobRetries;
}

export interface CountedRecord {
  readonly jobId: string;
  readonly lineNumber: number;
}

/** What one finished record adds to its job. */
export interface RecordCompletion {
  readonly lineNumber: number;
  readonly status: RecordOutcome['status'];
  readonly family: InputFamily | undefined;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cacheCreationInputTokens: number;
  readonly cacheReadInputTokens: number;
  readonly costNanoUsd: number;
}

/** A record's failed attempts by retry class: each class's limit counts its own failures only. */
export type ClassFailures = Readonly<Partial<Record<RetryClass, number>>>;

export type LeaseResult =
  | { readonly kind: 'acquired'; readonly attempt: number; readonly failures: ClassFailures }
  | { readonly kind: 'done' }
  | { readonly kind: 'held' };

export type Release = { readonly failed: RetryClass } | { readonly waited: true };

export interface Ledger {
  /** Creates the job unless it exists (a duplicate event): then returns false. */
  createJob(job: JobRecord): Promise<boolean>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  /**
   * Takes the reading of an enqueuing job's file, unless another reader holds it: the job as it stands, to
   * read on from its saved offset, or undefined.
   */
  leaseReading(jobId: string, lease: ReadingLease): Promise<JobRecord | undefined>;
  /** Gives the reading up early (the reader failed), so a retry can take it at once. */
  releaseReading(jobId: string, owner: string): Promise<void>;
  /** Claims `recordId` for a line of the job; returns the line that holds it when another does. */
  claimRecordId(jobId: string, recordId: string, lineNumber: number): Promise<number | undefined>;
  /** Saves where reading goes on and renews the lease; false when the lease has passed to another reader. */
  saveReadProgress(
    jobId: string,
    progress: { readOffset: number; readLine: number; recordsRead: number },
    lease: ReadingLease,
  ): Promise<boolean>;
  /** Records where a compressed input's decompressed copy is, if `lease` still holds the reading. */
  saveDecompressed(jobId: string, location: ObjectLocation, lease: ReadingLease): Promise<boolean>;
  /**
   * Ends an enqueuing job that cannot be read on (its input changed), with the event that says why;
   * records already sent finish as canceled. False when the job was not enqueuing.
   */
  failReading(
    jobId: string,
    reason: string,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean>;
  /** Records the total once the file is read; returns the job as it now stands. */
  setTotal(jobId: string, totalRecords: number): Promise<JobRecord>;
  isRecordDone(jobId: string, lineNumber: number): Promise<boolean>;
  /** Takes the record for one attempt (counting it) unless it is done or another worker holds it. */
  leaseRecord(jobId: string, lineNumber: number, owner: string, leaseSeconds: number): Promise<LeaseResult>;
  /**
   * Lets the record go for another attempt: after a failure of a class that retries (counted in that class),
   * or after waiting for a quota (the attempt the lease counted is taken back: it failed nothing).
   */
  releaseRecord(jobId: string, lineNumber: number, owner: string, release: Release): Promise<void>;
  /**
   * Marks the records done and adds them, with the retries, to their jobs' counters, all in one transaction.
   * A record already done (a redelivery) is left out and not counted; the answer lists the records counted.
   */
  completeRecords(updates: readonly JobUpdate[]): Promise<readonly CountedRecord[]>;
  /** Saves where the job's finalization stands (and that it moves: the sweeper reads progress from it). */
  saveFinalizeCheckpoint(jobId: string, checkpoint: FinalizeCheckpoint): Promise<void>;
  /** Moves a job whose records are all done to "finalizing"; true for the one caller that did it. */
  claimFinalization(jobId: string): Promise<boolean>;
  /**
   * Ends a finalizing job with the event that announces it (published next, then marked announced); false
   * when the job was not finalizing (another finalizer ended it).
   */
  finishJob(
    jobId: string,
    status: 'completed' | 'cancelled',
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean>;
  /** The job's announcement is published: forget it. */
  markAnnounced(jobId: string): Promise<void>;
  /** Asks a job that is not finished to stop; false when it is already finished or unknown. */
  cancelJob(jobId: string): Promise<boolean>;
  /** Jobs not finished yet, or finished with an announcement not yet published: for the sweeper. */
  listActiveJobs(): AsyncIterable<JobRecord>;
}

/** What the budget granted a batch of calls. */
export interface BudgetReservation {
  readonly key: string;
  /** Tokens taken: those of the calls granted. */
  readonly tokens: number;
  /** When each granted call may start: the first calls asked for, in order (perhaps none, perhaps all). */
  readonly startAts: readonly number[];
  /** When the first call not granted could start, as things stood; undefined when all were granted. */
  readonly retryAt: number | undefined;
}

/**
 * The token budget all workers share, per region and model id: the quota as a bucket of one minute's tokens
 * that refills continuously, as Bedrock keeps it.
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
}

/** A stored result: what the finalizer renders into the output file. */
export interface StoredResult {
  /** The family is unknown for a line too broken to show it; the finalizer picks the file's. */
  readonly subject: Omit<OutputSubject, 'family'> & { readonly family: InputFamily | undefined };
  readonly outcome: RecordOutcome;
  readonly completion: RecordCompletion;
  /** When it finished, after how many attempts, and the model call's latency when there was one. */
  readonly timing?: RecordTiming;
}

export interface RecordTiming {
  readonly finishedAt: string;
  readonly attempts: number;
  readonly modelId?: string;
  readonly latencyMs?: number;
}
