import type { ServiceTier } from '../contract/service-tiers.ts';
import type {
  Announcement,
  BatchPart,
  BatchPartState,
  CachedPrefix,
  CountedEntry,
  CountedRecord,
  DecompressCheckpoint,
  FinalizeCheckpoint,
  JobEnding,
  JobRecord,
  JobUpdate,
  LeaseResult,
  ObjectLocation,
  ReadingLease,
  ReadProgress,
  Release,
} from './model.ts';

/**
 * The ledger as its users see it, one interface per role: a workflow's ports name the roles (or the methods
 * of a role) it uses, never the whole ledger. One store implements them all (`Ledger`).
 */

/** Jobs as people look for them: the newest, and the one an object they uploaded started. */
export interface JobDirectory {
  /** The newest jobs first, at most `limit`. */
  recentJobs(limit: number): Promise<JobRecord[]>;
  /** The newest job of the object at `bucket`/`key`, whichever of its versions it runs. */
  newestJobOf(source: { readonly bucket: string; readonly key: string }): Promise<JobRecord | undefined>;
}

/** The jobs themselves: created once, read, totalled, stopped on request, listed while they run. */
export interface Jobs {
  createJob(job: JobRecord): Promise<boolean>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  setTotal(jobId: string, totalRecords: number): Promise<JobRecord>;
  /** Asks a running job to stop; `reason` says why when no one asked (its spending cap). */
  cancelJob(jobId: string, reason?: string): Promise<boolean>;
  listActiveJobs(): AsyncIterable<JobRecord>;
}

/** The reading of a job's file: one reader at a time (a lease), its progress saved, its failure recorded. */
export interface JobReading {
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
}

/** A job's end: finalization claimed once, checkpointed, the job finished and its end event announced. */
export interface JobFinalization {
  claimFinalization(jobId: string): Promise<boolean>;
  saveFinalizeCheckpoint(jobId: string, checkpoint: FinalizeCheckpoint): Promise<void>;
  finishJob(
    jobId: string,
    ending: JobEnding<'completed' | 'canceled' | 'superseded'>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean>;
  /**
   * Claims the publishing of the job's pending event for `leaseSeconds`: false when none is pending or
   * another claim holds, so two steps finding it pending at once publish it once.
   */
  claimAnnouncement(jobId: string, leaseSeconds: number): Promise<boolean>;
  /** Gives up a claim whose publish failed, so the next step publishes at once. */
  releaseAnnouncement(jobId: string): Promise<void>;
  markAnnounced(jobId: string): Promise<void>;
}

/** The prefix a job's records share, and who writes it to Bedrock's cache. */
export interface PrefixCache {
  /** Records the prefixes a job's records share, once: false when they were recorded before. */
  setSharedPrefixes(jobId: string, prefixes: Readonly<Record<string, CachedPrefix>>): Promise<boolean>;
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
}

/** The service tiers Bedrock refused a job's models: said once, so later records go straight to default. */
export interface TierRefusals {
  /** Adds `tierRefusalKey(modelId, tier)` to the job's refusals (again is harmless). */
  refuseTier(jobId: string, modelId: string, tier: ServiceTier): Promise<void>;
}

/** A batch-lane job's parts, each moved on by one step at a time. */
export interface BatchParts {
  /** Sets a job's batch parts, once: false when they were set before (a retried read finds them). */
  planBatchParts(jobId: string, parts: Readonly<Record<string, BatchPart>>): Promise<boolean>;
  /** Moves a batch part on, if it is still in one of `from`: false when another step moved it first. */
  moveBatchPart(jobId: string, from: readonly BatchPartState[], next: BatchPart): Promise<boolean>;
}

/** Everything kept on a job's own item. */
export interface JobLedger extends Jobs, JobReading, JobFinalization, PrefixCache, TierRefusals, BatchParts {}

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
  /**
   * Claims each id for its line (claiming it again for the same line is harmless): the answer names, for each
   * id another line holds, that line. The claims name distinct ids.
   */
  claimRecordIds(jobId: string, claims: readonly RecordIdClaim[]): Promise<ReadonlyMap<string, number>>;
}

export interface RecordIdClaim {
  readonly recordId: string;
  readonly lineNumber: number;
}

/**
 * What the deployment has spent each day (UTC): completing records adds their counted cost to the day they
 * are counted on, in the same write, so a day's figure counts each record once.
 */
export interface DailySpend {
  /** Nano-USD counted for records completed on `day` (YYYY-MM-DD, UTC); 0 for a day with none. */
  spentOn(day: string): Promise<number>;
}

/** The whole ledger, in one store: jobs, records and record ids, and the spend they add up to each day. */
export interface Ledger extends JobLedger, RecordLedger, RecordIdClaims, DailySpend {}
