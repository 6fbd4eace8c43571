import { createHash } from 'node:crypto';
import { countInputTokens } from '../../local/bedrock/tokens.ts';
import {
  afterTakes,
  afterThrottle,
  atRate,
  type BucketState,
  type BudgetRates,
  DAY_MS,
  fullBucket,
  grantable,
  MINUTE_MS,
  rateAfterRecovery,
  ratesFor,
  refillMs,
  responseToThrottle,
  takeEach,
} from '../../shared/budget/bucket.ts';
import { JOB_STARTED } from '../../shared/contract/job-events.ts';
import { spendingDayOf } from '../../shared/contract/ledger-table.ts';
import { type ServiceTier, tierRefusalKey } from '../../shared/contract/service-tiers.ts';
import { batchPartName } from '../../shared/contract/storage-layout.ts';
import type { JobDirectory, Ledger, RecordIdClaim } from '../../shared/core/ledger.ts';
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
  RecordCompletion,
  Release,
  UploadedPart,
} from '../../shared/core/model.ts';
import type {
  BatchJobRequest,
  BatchJobs,
  DeadlineAlarms,
  EnqueueContinuation,
  EventPublisher,
  FinalizeTrigger,
  InvokeTarget,
  ModelAnswer,
  ModelInvoker,
  ModelTarget,
  ObjectStore,
  RecordQueue,
  TokenBudget,
} from '../../shared/core/ports.ts';
import { addRetries } from '../../shared/core/retries.ts';
import { InputChangedError } from '../../shared/errors.ts';
import type { RetryClass } from '../../shared/failures.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import { alarmDelaySeconds, type DeadlineAlarm } from '../../shared/messages/deadline-alarm.ts';
import {
  parseRecordMessage,
  type RecordMessage,
  recordMessageBody,
} from '../../shared/messages/record-message.ts';
import { totalsAddedBy, totalsPlus } from '../../shared/output/manifest.ts';
import type { MessagesResponse } from '../../shared/output/result-records.ts';

/** In-memory stand-ins for the pipeline's ports: the domain's unit tests run on these, the adapters' contract tests compare against them. */

interface StoredObject {
  readonly bytes: Uint8Array;
  readonly etag: string;
  readonly metadata: Record<string, string>;
}

export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<string, StoredObject>();
  /** Chunk size of `stream`, small enough to split lines across chunks. */
  chunkSize = 7;

  putObject(
    bucket: string,
    key: string,
    body: string | Uint8Array,
    metadata: Record<string, string> = {},
  ): void {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    this.objects.set(`${bucket}/${key}`, {
      bytes,
      etag: createHash('md5').update(bytes).digest('hex'),
      metadata,
    });
  }

  text(bucket: string, key: string): string | undefined {
    const object = this.objects.get(`${bucket}/${key}`);
    return object === undefined ? undefined : Buffer.from(object.bytes).toString('utf8');
  }

  async head(location: ObjectLocation): Promise<ObjectInfo | undefined> {
    const object = this.objects.get(this.id(location));
    return object === undefined
      ? undefined
      : { size: object.bytes.length, etag: object.etag, versionId: undefined, metadata: object.metadata };
  }

  async *stream(location: ObjectLocation, startByte: number): AsyncIterable<Uint8Array> {
    const bytes = this.pinnedBytesOf(location);
    for (let offset = startByte; offset < bytes.length; offset += this.chunkSize)
      yield bytes.subarray(offset, offset + this.chunkSize);
  }

  async readRange(location: ObjectLocation, start: number, end: number): Promise<Uint8Array> {
    return this.pinnedBytesOf(location).subarray(start, end);
  }

  async read(location: ObjectLocation): Promise<Uint8Array | undefined> {
    return this.objects.get(this.id(location))?.bytes;
  }

  async remove(location: ObjectLocation): Promise<void> {
    this.objects.delete(`${location.bucket}/${location.key}`);
  }

  async put(
    location: ObjectLocation,
    body: string | Uint8Array,
    _contentType: string,
    metadata: Readonly<Record<string, string>> = {},
  ): Promise<void> {
    this.putObject(location.bucket, location.key, body, metadata);
  }

  async *list(bucket: string, prefix: string, startAfter?: string): AsyncIterable<string> {
    const keys = [...this.objects.keys()]
      .filter((id) => id.startsWith(`${bucket}/${prefix}`))
      .map((id) => id.slice(bucket.length + 1))
      .filter((key) => startAfter === undefined || key > startAfter)
      .sort();
    yield* keys;
  }

  /** Multipart uploads under way: their parts by number. */
  readonly uploads = new Map<string, { location: ObjectLocation; parts: Map<number, Uint8Array> }>();
  private readonly completedUploads = new Set<string>();
  private uploadsStarted = 0;

  async startMultipart(location: ObjectLocation): Promise<string> {
    this.uploadsStarted += 1;
    const uploadId = `upload-${this.uploadsStarted}`;
    this.uploads.set(uploadId, { location, parts: new Map() });
    return uploadId;
  }

  async uploadPart(
    _location: ObjectLocation,
    uploadId: string,
    part: number,
    body: Uint8Array,
  ): Promise<string> {
    const upload = this.uploads.get(uploadId);
    if (upload === undefined)
      throw Object.assign(new Error(`NoSuchUpload ${uploadId}`), { name: 'NoSuchUpload' });
    upload.parts.set(part, body);
    return createHash('md5').update(body).digest('hex');
  }

  async completeMultipart(
    location: ObjectLocation,
    uploadId: string,
    parts: readonly UploadedPart[],
  ): Promise<void> {
    const upload = this.uploads.get(uploadId);
    // S3 forgets a completed upload: completing it again finds the object in place.
    if (upload === undefined && this.completedUploads.has(uploadId)) return;
    if (upload === undefined)
      throw Object.assign(new Error(`NoSuchUpload ${uploadId}`), { name: 'NoSuchUpload' });
    const bodies = parts.map(({ part }) => {
      const body = upload.parts.get(part);
      if (body === undefined) throw new Error(`part ${part} of ${uploadId} was never uploaded`);
      return body;
    });
    this.putObject(location.bucket, location.key, Buffer.concat(bodies));
    this.uploads.delete(uploadId);
    this.completedUploads.add(uploadId);
  }

  private id(location: ObjectLocation): string {
    return `${location.bucket}/${location.key}`;
  }

  /** The object's bytes, if it is still the one the location's ETag names (S3 If-Match). */
  private pinnedBytesOf(location: ObjectLocation): Uint8Array {
    const object = this.objects.get(this.id(location));
    if (object === undefined || (location.etag !== undefined && location.etag !== object.etag))
      throw new InputChangedError(location);
    return object.bytes;
  }
}

interface RecordState {
  status: 'running' | 'waiting' | 'done';
  /** Where a done record's result is. */
  resultSet?: string | undefined;
  owner: string | undefined;
  leaseUntil: number;
  attempts: number;
  failures: Partial<Record<RetryClass, number>>;
  releases: number;
  unanswered: number;
}

type MutableJob = { -readonly [Field in keyof JobRecord]: JobRecord[Field] };

export class MemoryLedger implements Ledger, JobDirectory {
  readonly jobs = new Map<string, MutableJob>();
  readonly records = new Map<string, RecordState>();
  private readonly ids = new Map<string, number>();
  private readonly announcingUntil = new Map<string, number>();

  constructor(
    private readonly now: () => number = Date.now,
    /** As the DynamoDB ledger's option: only a deployment with a daily cap counts the day's spend. */
    private readonly options: { readonly countsDailySpend?: boolean } = {},
  ) {}

  async createJob(job: JobRecord): Promise<boolean> {
    if (this.jobs.has(job.jobId)) return false;
    this.jobs.set(job.jobId, structuredClone(job) as MutableJob);
    return true;
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const job = this.jobs.get(jobId);
    return job === undefined ? undefined : structuredClone(job);
  }

  async claimRecordIds(
    jobId: string,
    claims: readonly RecordIdClaim[],
  ): Promise<ReadonlyMap<string, number>> {
    const holders = new Map<string, number>();
    for (const { recordId, lineNumber } of claims) {
      const key = `${jobId}#${recordId}`;
      const holder = this.ids.get(key);
      if (holder !== undefined && holder !== lineNumber) holders.set(recordId, holder);
      else this.ids.set(key, lineNumber);
    }
    return holders;
  }

  /** Who reads each enqueuing job, and until when. */
  readonly readers = new Map<string, { owner: string; until: number }>();

  async leaseReading(jobId: string, lease: ReadingLease): Promise<JobRecord | undefined> {
    const job = this.jobs.get(jobId);
    const reader = this.readers.get(jobId);
    if (job?.status !== 'enqueuing') return undefined;
    if (reader !== undefined && reader.until >= this.now() && reader.owner !== lease.owner) return undefined;
    this.readers.set(jobId, { owner: lease.owner, until: this.now() + lease.leaseSeconds * 1000 });
    return structuredClone(job);
  }

  async releaseReading(jobId: string, owner: string): Promise<void> {
    if (this.readers.get(jobId)?.owner === owner) this.readers.delete(jobId);
  }

  async saveReadProgress(jobId: string, progress: ReadProgress, lease: ReadingLease): Promise<boolean> {
    if (this.readers.get(jobId)?.owner !== lease.owner) return false;
    this.readers.set(jobId, { owner: lease.owner, until: this.now() + lease.leaseSeconds * 1000 });
    Object.assign(this.job(jobId), progress, { updatedAt: new Date(this.now()).toISOString() });
    return true;
  }

  async saveDecompressing(
    jobId: string,
    checkpoint: DecompressCheckpoint,
    lease: ReadingLease,
  ): Promise<boolean> {
    if (this.readers.get(jobId)?.owner !== lease.owner) return false;
    this.readers.set(jobId, { owner: lease.owner, until: this.now() + lease.leaseSeconds * 1000 });
    this.job(jobId).decompressing = structuredClone(checkpoint);
    return true;
  }

  async saveDecompressed(
    jobId: string,
    location: ObjectLocation,
    lease: ReadingLease,
    notice?: string,
  ): Promise<boolean> {
    if (this.readers.get(jobId)?.owner !== lease.owner) return false;
    const job = this.job(jobId);
    job.decompressed = { ...location };
    job.decompressing = undefined;
    if (notice !== undefined) job.inputNotice = notice;
    return true;
  }

  async failReading(
    jobId: string,
    ending: Required<JobEnding<'failed' | 'superseded'>>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean> {
    const job = this.job(jobId);
    if (job.status !== 'enqueuing') return false;
    Object.assign(job, {
      status: ending.status,
      failureReason: ending.reason,
      finishedAt,
      cancelRequested: true,
      announcement,
    });
    this.readers.delete(jobId);
    return true;
  }

  async setTotal(jobId: string, totalRecords: number): Promise<JobRecord> {
    const job = this.job(jobId);
    job.totalRecords = totalRecords;
    job.totals = { ...job.totals, totalRecordCount: totalRecords };
    if (job.status === 'enqueuing') {
      job.status = 'running';
      this.readers.delete(jobId);
    }
    return structuredClone(job);
  }

  async doneRecords(jobId: string, lineNumbers: readonly number[]): Promise<ReadonlySet<number>> {
    return new Set(
      lineNumbers.filter((lineNumber) => this.records.get(`${jobId}#${lineNumber}`)?.status === 'done'),
    );
  }

  async leaseRecord(
    jobId: string,
    lineNumber: number,
    owner: string,
    leaseSeconds: number,
    resultSet: string,
  ): Promise<LeaseResult> {
    const key = `${jobId}#${lineNumber}`;
    const state = this.records.get(key);
    if (state?.status === 'done') return { kind: 'done' };
    if (state?.status === 'running' && state.leaseUntil > this.now()) return { kind: 'held' };
    const attempts = (state?.attempts ?? 0) + 1;
    const failures = { ...state?.failures };
    const releases = state?.releases ?? 0;
    const unanswered = state?.unanswered ?? 0;
    this.records.set(key, {
      status: 'running',
      owner,
      leaseUntil: this.now() + leaseSeconds * 1000,
      attempts,
      failures,
      resultSet,
      releases,
      unanswered,
    });
    const earlierSet = state?.resultSet;
    return {
      kind: 'acquired',
      attempt: attempts,
      failures: { ...failures },
      releases,
      unanswered,
      ...(earlierSet === undefined ? {} : { earlierSet }),
    };
  }

  async releaseRecord(jobId: string, lineNumber: number, owner: string, release: Release): Promise<void> {
    const state = this.records.get(`${jobId}#${lineNumber}`);
    if (state?.status !== 'running' || state.owner !== owner) return;
    state.status = 'waiting';
    state.resultSet = undefined;
    if ('waited' in release) state.attempts -= 1;
    else {
      state.failures[release.failed] = (state.failures[release.failed] ?? 0) + 1;
      state.releases += 1;
      if (release.unanswered === true) state.unanswered += 1;
    }
  }

  /** Transactions the ledger ran: one per batch. */
  transactions = 0;
  /** Nano-USD counted per day (UTC), as records complete. */
  readonly dailySpend = new Map<string, number>();

  async spentOn(day: string): Promise<number> {
    return this.dailySpend.get(day) ?? 0;
  }

  async completeRecords(updates: readonly JobUpdate[]): Promise<readonly CountedRecord[]> {
    this.transactions += 1;
    const counted: CountedRecord[] = [];
    for (const update of updates) {
      const job = this.job(update.jobId);
      job.retries = addRetries(job.retries, update.retries);
      for (const completion of update.completions) {
        if (this.markDone(update.jobId, completion, update.resultSet))
          counted.push({ jobId: update.jobId, lineNumber: completion.lineNumber });
      }
    }
    return counted;
  }

  async *countedRecords(jobId: string, afterLine: number): AsyncIterable<CountedEntry> {
    const counted = [...this.records]
      .filter(([key, state]) => key.startsWith(`${jobId}#`) && state.status === 'done')
      .map(([key, state]) => ({
        lineNumber: Number(key.slice(jobId.length + 1)),
        resultSet: state.resultSet,
      }))
      .filter(({ lineNumber }) => lineNumber > afterLine);
    yield* counted.sort((a, b) => a.lineNumber - b.lineNumber);
  }

  private markDone(jobId: string, completion: RecordCompletion, resultSet: string | undefined): boolean {
    const key = `${jobId}#${completion.lineNumber}`;
    const state = this.records.get(key);
    if (state?.status === 'done') return false;
    this.records.set(key, {
      status: 'done',
      resultSet,
      owner: undefined,
      leaseUntil: 0,
      attempts: state?.attempts ?? 0,
      failures: state?.failures ?? {},
      releases: state?.releases ?? 0,
      unanswered: state?.unanswered ?? 0,
    });
    const job = this.job(jobId);
    const totals = job.totals;
    if (this.options.countsDailySpend === true) {
      const day = spendingDayOf(this.now());
      this.dailySpend.set(day, (this.dailySpend.get(day) ?? 0) + completion.costNanoUsd);
    }
    job.doneRecords += 1;
    job.totals = totalsPlus(totals, totalsAddedBy(completion));
    if (completion.family !== undefined) {
      job.familyCounts = {
        ...job.familyCounts,
        [completion.family]: (job.familyCounts[completion.family] ?? 0) + 1,
      };
    }
    if (completion.pool !== undefined) {
      job.poolRecords = {
        ...job.poolRecords,
        [completion.pool]: (job.poolRecords[completion.pool] ?? 0) + 1,
      };
    }
    return true;
  }

  async claimFinalization(jobId: string): Promise<boolean> {
    const job = this.job(jobId);
    if (job.status !== 'running' || job.totalRecords === undefined || job.doneRecords < job.totalRecords)
      return false;
    job.status = 'finalizing';
    return true;
  }

  async saveFinalizeCheckpoint(jobId: string, checkpoint: FinalizeCheckpoint): Promise<void> {
    const job = this.job(jobId);
    if (job.status !== 'finalizing') throw new Error(`job ${jobId} is ${job.status}, not finalizing`);
    Object.assign(job, {
      finalizeCheckpoint: structuredClone(checkpoint),
      updatedAt: new Date(this.now()).toISOString(),
    });
  }

  async finishJob(
    jobId: string,
    ending: JobEnding<'completed' | 'canceled' | 'superseded'>,
    finishedAt: string,
    announcement: Announcement,
  ): Promise<boolean> {
    const job = this.job(jobId);
    if (job.status !== 'finalizing') return false;
    Object.assign(job, {
      status: ending.status,
      ...(ending.reason === undefined ? {} : { failureReason: ending.reason }),
      finishedAt,
      announcement,
      finalizeCheckpoint: undefined,
    });
    return true;
  }

  async claimAnnouncement(jobId: string, leaseSeconds: number): Promise<boolean> {
    const held = (this.announcingUntil.get(jobId) ?? 0) >= this.now();
    if (this.jobs.get(jobId)?.announcement === undefined || held) return false;
    this.announcingUntil.set(jobId, this.now() + leaseSeconds * 1000);
    return true;
  }

  async releaseAnnouncement(jobId: string): Promise<void> {
    this.announcingUntil.delete(jobId);
  }

  async markAnnounced(jobId: string): Promise<void> {
    this.job(jobId).announcement = undefined;
    this.announcingUntil.delete(jobId);
  }

  async cancelJob(jobId: string, reason?: string): Promise<boolean> {
    const job = this.jobs.get(jobId);
    if (job === undefined || !['enqueuing', 'running'].includes(job.status)) return false;
    job.cancelRequested = true;
    if (reason !== undefined) job.cancelReason ??= reason;
    return true;
  }

  async recentJobs(limit: number): Promise<JobRecord[]> {
    return this.newestFirst().slice(0, limit);
  }

  async newestJobOf(source: {
    readonly bucket: string;
    readonly key: string;
  }): Promise<JobRecord | undefined> {
    return this.newestFirst().find(
      (job) => job.source.bucket === source.bucket && job.source.key === source.key,
    );
  }

  private newestFirst(): JobRecord[] {
    // Of jobs created at one moment, the one created last is the newest.
    return [...this.jobs.values()]
      .reverse()
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .map((job) => structuredClone(job));
  }

  async *listActiveJobs(): AsyncIterable<JobRecord> {
    for (const job of this.jobs.values()) {
      if (['enqueuing', 'running', 'finalizing'].includes(job.status) || job.announcement !== undefined)
        yield structuredClone(job);
    }
  }

  async claimPrefixWrite(
    jobId: string,
    modelId: string,
    claim: { owner: string; until: number; freshAfter: number; now: number },
  ): Promise<'write' | 'written' | 'busy'> {
    const job = this.job(jobId);
    const write = job.prefixWrites[modelId];
    if (write?.writtenAt !== undefined && write.writtenAt >= claim.freshAfter) return 'written';
    if (write !== undefined && write.writtenAt === undefined && write.until >= claim.now) return 'busy';
    job.prefixWrites = { ...job.prefixWrites, [modelId]: { writer: claim.owner, until: claim.until } };
    return 'write';
  }

  async markPrefixWritten(jobId: string, modelId: string, at: number): Promise<void> {
    const job = this.job(jobId);
    const write = job.prefixWrites[modelId];
    if (write !== undefined)
      job.prefixWrites = { ...job.prefixWrites, [modelId]: { ...write, writtenAt: at } };
  }

  async refuseTier(jobId: string, modelId: string, tier: ServiceTier): Promise<void> {
    const job = this.job(jobId);
    const refusal = tierRefusalKey(modelId, tier);
    if (!job.tierRefusals.includes(refusal)) job.tierRefusals = [...job.tierRefusals, refusal];
  }

  async setSharedPrefixes(jobId: string, prefixes: Readonly<Record<string, CachedPrefix>>): Promise<boolean> {
    const job = this.job(jobId);
    if (job.sharedPrefixes !== undefined) return false;
    job.sharedPrefixes = structuredClone(prefixes);
    return true;
  }

  async planBatchParts(jobId: string, parts: Readonly<Record<string, BatchPart>>): Promise<boolean> {
    const job = this.job(jobId);
    if (job.batchParts !== undefined) return false;
    job.batchParts = structuredClone(parts);
    return true;
  }

  async moveBatchPart(jobId: string, from: readonly BatchPartState[], next: BatchPart): Promise<boolean> {
    const job = this.job(jobId);
    const name = batchPartName(next.part);
    const current = job.batchParts?.[name];
    if (current === undefined || !from.includes(current.state)) return false;
    job.batchParts = { ...job.batchParts, [name]: structuredClone(next) };
    return true;
  }

  private job(jobId: string): MutableJob {
    const job = this.jobs.get(jobId);
    if (job === undefined) throw new Error(`no job ${jobId}`);
    return job;
  }
}

export class MemoryQueue implements RecordQueue {
  readonly sent: RecordMessage[] = [];
  readonly visibilityChanges: Array<{ receiptHandle: string; seconds: number }> = [];
  /** Messages sent with a delay (records waiting for quota), as well as in `sent`. */
  readonly delayed: Array<{ message: RecordMessage; delaySeconds: number }> = [];

  /** Each message as a worker reads it off SQS: through its body, so a line too large to ride is left out. */
  async send(sending: readonly RecordMessage[], delaysSeconds?: readonly number[]): Promise<void> {
    const messages = sending.map((message) => parseRecordMessage(recordMessageBody(message)));
    this.sent.push(...messages);
    messages.forEach((message, index) => {
      const delaySeconds = delaysSeconds?.[index];
      if (delaySeconds !== undefined) this.delayed.push({ message, delaySeconds });
    });
  }

  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    this.visibilityChanges.push({ receiptHandle, seconds });
  }
}

/**
 * The shared budget in memory, on the same bucket arithmetic as the DynamoDB one, on a clock the test moves.
 * An unlimited quota by default.
 */
export class MemoryBudget implements TokenBudget {
  readonly buckets = new Map<string, BucketState>();
  readonly throttles: string[] = [];
  readonly pauses: Array<{ key: string; until: number }> = [];
  /** Reserves and settles, as the DynamoDB budget would write them. */
  writes = 0;
  /** What each reserve asked for. */
  readonly asked: Array<{ key: string; tokens: readonly number[] }> = [];
  constructor(
    private readonly rates: BudgetRates = { tokensPerMinute: Number.POSITIVE_INFINITY },
    private readonly now: () => number = Date.now,
  ) {}

  async reserve(key: string, tokens: readonly number[], latestStart: number): Promise<BudgetReservation> {
    this.writes += 1;
    this.asked.push({ key, tokens });
    const now = this.now();
    const state = this.stateOf(key, now);
    const count = grantable(state, tokens, now, latestStart);
    const granted = takeEach(state, tokens.slice(0, count), now);
    const after = afterTakes(state, granted);
    this.buckets.set(key, after);
    const next = tokens.slice(count, count + 1);
    return {
      key,
      tokens: tokens.slice(0, count).reduce((sum, amount) => sum + amount, 0),
      startAts: granted.startAts,
      retryAt: next.length === 0 ? undefined : takeEach(after, next, now).startAts[0],
    };
  }

  async settle(reservation: BudgetReservation, chargedTokens: number): Promise<void> {
    const delta = chargedTokens - reservation.tokens;
    if (delta === 0) return;
    this.writes += 1;
    const now = this.now();
    const state = this.stateOf(reservation.key, now);
    const dt = refillMs(delta, state.tokensPerMinute);
    const { day } = state;
    // Giving back only ever adds to a bucket that is not full.
    const minuteKept = delta < 0 && state.fullAt < now;
    const dayKept = day === undefined || (delta < 0 && day.fullAt <= now);
    if (minuteKept && dayKept) return;
    const settled = {
      ...state,
      fullAt: minuteKept ? state.fullAt : Math.max(state.fullAt, now) + dt,
      ...(dayKept
        ? {}
        : { day: { ...day, fullAt: Math.max(day.fullAt, now) + refillMs(delta, day.tokensPerDay, DAY_MS) } }),
    };
    const recovered = rateAfterRecovery(settled, ratesFor(this.rates, reservation.key), now);
    this.buckets.set(reservation.key, recovered === undefined ? settled : atRate(settled, recovered, now));
  }

  async recordThrottle(key: string): Promise<void> {
    this.throttles.push(key);
    const now = this.now();
    const state = this.stateOf(key, now);
    this.buckets.set(
      key,
      afterThrottle(state, responseToThrottle(state, ratesFor(this.rates, key), now), now),
    );
  }

  async pauseUntil(key: string, until: number): Promise<void> {
    this.pauses.push({ key, until });
    const state = this.stateOf(key, this.now());
    this.buckets.set(key, { ...state, fullAt: Math.max(state.fullAt, until + MINUTE_MS) });
  }

  async spendableFrom(key: string): Promise<number> {
    const state = this.stateOf(key, this.now());
    return Math.max(state.fullAt - MINUTE_MS, (state.day?.fullAt ?? 0) - DAY_MS);
  }

  async lastSeen(key: string): Promise<BucketState | undefined> {
    if (this.rates.leftOut?.[key] !== undefined) return undefined;
    return this.stateOf(key, this.now());
  }

  stateOf(key: string, now: number): BucketState {
    const rates = ratesFor(this.rates, key);
    return this.buckets.get(key) ?? fullBucket(rates.tokensPerMinute, now, rates.tokensPerDay);
  }
}

/** Answers every call from `answer`, which may throw to fail it; counts tokens as the local stand-in does. */
export class ScriptedModel implements ModelInvoker {
  readonly calls: Array<{
    region: string;
    modelId: string;
    body: Record<string, unknown>;
    serviceTier?: ServiceTier;
  }> = [];
  readonly tokenCounts: Array<{ region: string; modelId: string }> = [];

  constructor(
    private readonly answer: (
      modelId: string,
      body: Record<string, unknown>,
      call: number,
      serviceTier: ServiceTier | undefined,
    ) => MessagesResponse,
    /** What a call waits for before its answer comes: nothing unless given. */
    private readonly answering: () => Promise<void> = async () => {},
  ) {}

  /** Answered at the tier asked for, as Bedrock answers a tier the model takes. */
  async invoke({ region, modelId, serviceTier }: InvokeTarget, bodyJson: string): Promise<ModelAnswer> {
    const body = JSON.parse(bodyJson) as Record<string, unknown>;
    this.calls.push({ region, modelId, body, ...(serviceTier === undefined ? {} : { serviceTier }) });
    await this.answering();
    return {
      response: this.answer(modelId, body, this.calls.length, serviceTier),
      servedTier: serviceTier ?? 'default',
    };
  }

  async countTokens({ region, modelId }: ModelTarget, bodyJson: string): Promise<number> {
    this.tokenCounts.push({ region, modelId });
    return countInputTokens(JSON.parse(bodyJson) as MessagesBody).total;
  }
}

export function textResponse(text: string, usage = { input_tokens: 10, output_tokens: 5 }): MessagesResponse {
  return {
    id: 'msg_bdrk_test',
    type: 'message',
    role: 'assistant',
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    usage: { cache_creation_input_tokens: 0, cache_read_input_tokens: 0, ...usage },
  };
}

export class RecordingEvents implements EventPublisher {
  readonly published: Array<{ detailType: string; detail: Record<string, unknown> }> = [];

  /** What was said of jobs beyond their start: how they ended, what the sweeper found. */
  get outcomes() {
    return this.published.filter((event) => event.detailType !== JOB_STARTED);
  }

  get starts() {
    return this.published.filter((event) => event.detailType === JOB_STARTED);
  }

  async publish(detailType: string, detail: Record<string, unknown>): Promise<void> {
    this.published.push({ detailType, detail });
  }
}

/** Deadline alarms as set, each with the delay SQS would give it. */
export class RecordingAlarms implements DeadlineAlarms {
  readonly alarmsSet: Array<{ readonly alarm: DeadlineAlarm; readonly delaySeconds: number }> = [];

  async set(alarm: DeadlineAlarm, now: number): Promise<void> {
    this.alarmsSet.push({ alarm, delaySeconds: alarmDelaySeconds(alarm.at, now) });
  }
}

export class RecordingTrigger implements FinalizeTrigger, EnqueueContinuation {
  readonly finalized: string[] = [];
  readonly continued: string[] = [];

  async trigger(jobId: string): Promise<void> {
    this.finalized.push(jobId);
  }

  async continueLater(jobId: string): Promise<void> {
    this.continued.push(jobId);
  }
}

type BatchFate = 'answer' | 'error' | 'missing';

/**
 * Bedrock batch inference in memory: jobs are submitted (one per client request token) and stay in
 * progress until the test ends them, answering each input record with the harness's model (or an error
 * line, or nothing), in reverse order, as Bedrock keeps no order.
 */
export class MemoryBatchJobs implements BatchJobs {
  readonly jobs: Array<{ jobArn: string; request: BatchJobRequest; status: string }> = [];
  readonly stops: string[] = [];
  /** Errors the next submits fail with, in order (ServiceQuotaExceededException: no room in the region). */
  readonly refusals: string[] = [];

  constructor(
    private readonly store: MemoryObjectStore,
    private readonly answer: (modelId: string, body: Record<string, unknown>) => MessagesResponse,
  ) {}

  async submit(request: BatchJobRequest): Promise<string> {
    const refusal = this.refusals.shift();
    if (refusal !== undefined) throw Object.assign(new Error(`Refused: ${refusal}.`), { name: refusal });
    const earlier = this.jobs.find((job) => job.request.clientRequestToken === request.clientRequestToken);
    if (earlier !== undefined) return earlier.jobArn;
    const jobArn = `arn:aws:bedrock:us-west-2:000000000000:model-invocation-job/job${this.jobs.length}`;
    this.jobs.push({ jobArn, request, status: 'InProgress' });
    return jobArn;
  }

  async describe(jobArn: string): Promise<{ status: string }> {
    return { status: this.job(jobArn).status };
  }

  async stop(jobArn: string): Promise<void> {
    this.stops.push(jobArn);
    this.job(jobArn).status = 'Stopping';
  }

  /** Ends a job: every record its input holds gets its fate (an answer unless told), then the job `status`. */
  async end(jobArn: string, status: string, fate: (recordId: string) => BatchFate = () => 'answer') {
    const job = this.job(jobArn);
    const [bucket = '', inputPrefix = ''] = job.request.inputUri.replace('s3://', '').split(/\/(.*)/s);
    const lines: string[] = [];
    for await (const key of this.store.list(bucket, inputPrefix)) {
      for (const line of (this.store.text(bucket, key) ?? '').split('\n')) {
        if (line === '') continue;
        const { recordId, modelInput } = JSON.parse(line) as {
          recordId: string;
          modelInput: Record<string, unknown>;
        };
        const recordFate = fate(recordId);
        if (recordFate === 'missing') continue;
        lines.push(
          JSON.stringify(
            recordFate === 'error'
              ? { recordId, modelInput, error: { errorCode: 500, errorMessage: 'Internal server error.' } }
              : { recordId, modelInput, modelOutput: this.answer(job.request.modelId, modelInput) },
          ),
        );
      }
    }
    const outputPrefix = job.request.outputUri.replace(`s3://${bucket}/`, '');
    const folder = `${outputPrefix}${jobArn.split('/').pop()}/`;
    this.store.putObject(bucket, `${folder}input.jsonl.out`, `${lines.reverse().join('\n')}\n`);
    this.store.putObject(
      bucket,
      `${folder}manifest.json.out`,
      JSON.stringify({ totalRecordCount: lines.length }),
    );
    job.status = status;
  }

  private job(jobArn: string) {
    const job = this.jobs.find((candidate) => candidate.jobArn === jobArn);
    if (job === undefined) throw new Error(`no batch job ${jobArn}`);
    return job;
  }
}
