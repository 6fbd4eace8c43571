import type { CacheTtl } from '../caching/cache-ttl.ts';
import type { EndpointKind } from '../catalog/catalog.ts';
import type { Lane } from '../contract/lanes.ts';
import type { ServiceTier } from '../contract/service-tiers.ts';
import type { RetryClass } from '../failures.ts';
import type { InputFamily } from '../input/records.ts';
import type { JobTotals } from '../output/manifest.ts';
import type { OutputSubject, RecordOutcome } from '../output/result-records.ts';

/** The pipeline's data: jobs, records and their results as the ledger, the store and the budget keep them. */

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

export interface UploadedPart {
  readonly part: number;
  readonly etag: string;
}

/** How far a compressed input's decompression got: the next invocation goes on from there. */
export interface DecompressCheckpoint {
  readonly uploadId: string;
  readonly parts: readonly UploadedPart[];
  /** The decompressed bytes those parts hold. */
  readonly bytes: number;
}

/**
 * Where a finalization stands: the output's multipart upload, the parts sent, the last result they hold,
 * and the statistics gathered up to it. A finalizer that stops or dies goes on from here.
 */
export interface FinalizeCheckpoint {
  readonly uploadId: string;
  readonly parts: readonly UploadedPart[];
  /** The line of the last result in the saved parts. */
  readonly lastLine: number;
  readonly linesWritten: number;
  readonly stats: unknown;
}

/**
 * An event a job has decided to send, kept in the ledger with the status change that decided it and removed
 * once published: a failed publish (or function) leaves it there for the next attempt or the sweeper.
 */
export interface Announcement {
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

export const jobStatuses = [
  'enqueuing',
  'running',
  'finalizing',
  'completed',
  'failed',
  'canceled',
  /** Its input was replaced (or deleted) under it: the newer upload is a job of its own. */
  'superseded',
] as const;
export type JobStatus = (typeof jobStatuses)[number];

/** The statuses a job ends in: nothing more happens to it. */
export const ENDED_JOB_STATUSES: ReadonlySet<JobStatus> = new Set([
  'completed',
  'failed',
  'canceled',
  'superseded',
]);

/** The statuses a job ends in with its output and manifest written. */
export const FINALIZED_JOB_STATUSES: ReadonlySet<JobStatus> = new Set([
  'completed',
  'canceled',
  'superseded',
]);

/** How a job ends and, when not as asked, why. */
export interface JobEnding<Status extends JobStatus = JobStatus> {
  readonly status: Status;
  readonly reason?: string;
}

export interface JobSettings {
  readonly model: string;
  /** The home region: the first of `regions`. */
  readonly region: string;
  /** The preferred endpoint kind: the first of `endpoints`. */
  readonly endpoint: EndpointKind;
  /**
   * The endpoint kinds records may be called through, most preferred first, none looser than the file
   * allows (its quota pools, with `regions`); `endpoint` alone when absent.
   */
  readonly endpoints?: readonly EndpointKind[];
  /** The source regions records may be called from, the home region first; `region` alone when absent. */
  readonly regions?: readonly string[];
  readonly defaultMaxTokens: number;
  /** The Bedrock model ids the deployment allows (IAM allows only these); any model when absent. */
  readonly allowedModelIds?: readonly string[];
  /** How the records reach Bedrock; on demand when absent. */
  readonly lane?: Lane;
  /** Hours from the job's start by which every record must be done; batch jobs still running are stopped. */
  readonly deadlineHours?: number;
  /** auto (when absent): a prefix many records share is cached; off: no breakpoint is added. */
  readonly cache?: 'auto' | 'off';
  /** The part of the records that may be invalid before reading stops and the job fails; 0.5 when absent. */
  readonly maxErrorRate?: number;
  /** The most the job may spend, in USD: once its counted cost reaches it, no record starts another call. */
  readonly maxCostUsd?: number;
  /** The service tier its calls ask for; default when absent. */
  readonly tier?: ServiceTier;
  /** When its records not yet run end `expired` instead (ISO time; a message batch's expires_at). */
  readonly expiresAt?: string;
}

/** Where reading continues: the byte offset and the number of the line that starts there, and what was read. */
export interface ReadProgress {
  readonly readOffset: number;
  readonly readLine: number;
  /** Records (non-blank lines) read so far. */
  readonly recordsRead: number;
  /** Of those, the lines that are not valid records (their error records are stored as they are read). */
  readonly invalidLines: number;
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
  /** Of those, the lines that are not valid records. */
  readonly invalidLines: number;
  /** Known once the whole file has been read. */
  readonly totalRecords: number | undefined;
  readonly doneRecords: number;
  readonly totals: JobTotals;
  readonly familyCounts: Readonly<Partial<Record<InputFamily, number>>>;
  /** Records each quota pool (`<source region>#<model id>`) answered on demand so far. */
  readonly poolRecords: Readonly<Record<string, number>>;
  readonly failureReason: string | undefined;
  readonly finishedAt: string | undefined;
  /** Set by cancel: records not yet run become "canceled" results and the job finishes as canceled. */
  readonly cancelRequested: boolean;
  /** Why it was canceled when no one asked: its spending cap was reached. */
  readonly cancelReason?: string;
  /** Attempts sent back to the queue: after a Bedrock failure (throttles among them), or to wait for budget. */
  readonly retries: JobRetries;
  /** The job's final event while it is not yet published. */
  readonly announcement: Announcement | undefined;
  /** A compressed input's decompressed copy, which its records are read from (pinned by its ETag). */
  readonly decompressed: ObjectLocation | undefined;
  /** Its decompression under way, when an invocation stopped before the copy was whole. */
  readonly decompressing: DecompressCheckpoint | undefined;
  /** What the user must know of the input as read: a compressed file cut short, whose lines after the cut are missing. */
  readonly inputNotice: string | undefined;
  /** Where its finalization stands, while it is being finalized in several steps. */
  readonly finalizeCheckpoint: FinalizeCheckpoint | undefined;
  /** Its batch parts, by name, once its file is read in a lane that stages records for batch jobs. */
  readonly batchParts: Readonly<Record<string, BatchPart>> | undefined;
  /**
   * The prefix its records share, per model id, found in its first records (empty when none is): the worker
   * adds a cache breakpoint at its end. Undefined until the first chunk is read.
   */
  readonly sharedPrefixes: Readonly<Record<string, CachedPrefix>> | undefined;
  /** Who writes each model's shared prefix to Bedrock's cache, and when it was last written. */
  readonly prefixWrites: Readonly<Record<string, PrefixWrite>>;
  /** The tiers Bedrock refused for a model in this job (`tierRefusalKey`): its later records go to default. */
  readonly tierRefusals: readonly string[];
}

/** One worker writes a shared prefix to the cache; the others wait for it, then read. */
export interface PrefixWrite {
  readonly writer: string;
  /** Until when the writer holds the write (epoch ms): after it, another may take it over. */
  readonly until: number;
  /** When the write was done (epoch ms). */
  readonly writtenAt?: number;
}

/** A shared prefix the worker marks for caching: where it ends, what it holds, about how large it is. */
export interface CachedPrefix {
  readonly blocks: number;
  readonly fingerprint: string;
  readonly tokens: number;
  /** 1h when the file takes longer to drain than the short TTL and the model has it; 5 minutes when absent. */
  readonly ttl?: CacheTtl;
}

/**
 * staged: written, waiting to be submitted (or for room among the region's jobs in flight); submitted: a
 * batch job runs it; collected: its results are in and the records it did not finish went on demand;
 * on-demand: too few records for a batch job, sent to the record queue.
 */
export type BatchPartState = 'staged' | 'submitted' | 'collected' | 'on-demand';

export interface BatchPart {
  readonly part: number;
  readonly records: number;
  /** The size of its batch input, which a batch job limits too. */
  readonly bytes: number;
  readonly state: BatchPartState;
  /** The Bedrock batch job that runs it, once submitted. */
  readonly jobArn?: string;
  /** The state its batch job ended in, once collected; why it went on demand, when it did. */
  readonly endedAs?: string;
}

/** Who reads a job's file now, and for how long without saving progress before another may take over. */
export interface ReadingLease {
  readonly owner: string;
  readonly leaseSeconds: number;
}

/** How a job's records got to their results: attempts, waits and deliveries, each a plain sum. */
export interface JobRetries {
  /** Attempts that failed and were tried again. */
  readonly retried: number;
  readonly bedrockThrottles: number;
  /** Records whose call started at least `WAITED_FOR_TOKENS_MS` after their batch's grant. */
  readonly budgetWaits: number;
  /** Records sent back to the queue to wait (for tokens, a prefix being written, the daily quota). */
  readonly sentBackToWait: number;
  /** Deliveries of the job's record messages to the worker, each receive counted. */
  readonly receives: number;
  /** InvokeModel calls made for the job's records, answered or not. */
  readonly bedrockCalls: number;
}

/** What a batch adds to one job: the records it finished and the attempts it sent back or made wait. */
export interface JobUpdate {
  readonly jobId: string;
  readonly completions: readonly RecordCompletion[];
  readonly retries: JobRetries;
  /** The key of the result set object that holds these completions' results. */
  readonly resultSet?: string;
}

/** A counted record, as the finalizer reads them in line order: where its result is. */
export interface CountedEntry {
  readonly lineNumber: number;
  /** The result set holding its result; undefined for a result stored on its own by an earlier version. */
  readonly resultSet: string | undefined;
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
  /** What it would have cost with no prompt cache: its cache reads and writes at the input price. */
  readonly uncachedCostNanoUsd: number;
  /** The quota pool that answered it on demand (`<source region>#<model id>`). */
  readonly pool?: string;
  /** Its calls that may have been billed with no usage counted, and the most they may have cost. */
  readonly uncounted?: UncountedCalls | undefined;
  /** Its model has no price in the catalog: its cost is unknown, and left out of `costNanoUsd` (0 here). */
  readonly unpriced?: boolean;
  /** The service tier that answered it, for records Bedrock answered. */
  readonly servedTier?: ServiceTier;
  /** It asked for a tier Bedrock refused for its model, and ran on default instead. */
  readonly downgraded?: boolean;
}

/**
 * Calls Bedrock may have run and billed that returned no usage: unanswered (a deadline, a timeout, a broken
 * connection) and abandoned (their worker stopped before settling them), with the most they may have cost.
 */
export interface UncountedCalls {
  readonly unanswered: number;
  readonly abandoned: number;
  readonly costCapNanoUsd: number;
}

/** A record's failed attempts by retry class: each class's limit counts its own failures only. */
export type ClassFailures = Readonly<Partial<Record<RetryClass, number>>>;

export type LeaseResult =
  | {
      readonly kind: 'acquired';
      readonly attempt: number;
      readonly failures: ClassFailures;
      /**
       * Of the attempts before this one, those that ended by releasing the record (a failure to try again);
       * the others ended with their worker (abandoned), perhaps after Bedrock billed their call.
       */
      readonly releases: number;
      /** Of those releases, the calls that got no answer: Bedrock may have run and billed them. */
      readonly unanswered: number;
      /** The result set an earlier attempt, whose lease ran out, meant to store the record's result in. */
      readonly earlierSet?: string;
    }
  | { readonly kind: 'done' }
  | { readonly kind: 'held' };

/** A failure to try again (`unanswered` when its call got no answer), or a wait that spends no attempt. */
export type Release =
  | { readonly failed: RetryClass; readonly unanswered?: boolean }
  | { readonly waited: true };

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
  /** The model id that answered, and the source region it was called from. */
  readonly modelId?: string;
  readonly region?: string;
  readonly latencyMs?: number;
  /** Set when a batch job answered the record; on demand otherwise. */
  readonly lane?: 'batch';
}
