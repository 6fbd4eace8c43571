import { createHash } from 'node:crypto';
import type { RecordMessage } from '../../shared/messages/record-message.ts';
import type { MessagesResponse } from '../../shared/output/result-records.ts';
import type {
  BudgetReservation,
  EnqueueContinuation,
  EventPublisher,
  FinalizeTrigger,
  JobRecord,
  LeaseResult,
  Ledger,
  ModelInvoker,
  ObjectInfo,
  ObjectLocation,
  ObjectStore,
  ObjectUpload,
  RecordCompletion,
  RecordQueue,
  RetryKind,
  TokenBudget,
} from '../../shared/pipeline/ports.ts';

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
    const bytes = this.bytesOf(location);
    for (let offset = startByte; offset < bytes.length; offset += this.chunkSize)
      yield bytes.subarray(offset, offset + this.chunkSize);
  }

  async readRange(location: ObjectLocation, start: number, end: number): Promise<Uint8Array> {
    return this.bytesOf(location).subarray(start, end);
  }

  async read(location: ObjectLocation): Promise<Uint8Array | undefined> {
    return this.objects.get(this.id(location))?.bytes;
  }

  async putIfAbsent(location: ObjectLocation, body: string): Promise<'written' | 'exists'> {
    if (this.objects.has(this.id(location))) return 'exists';
    this.putObject(location.bucket, location.key, body);
    return 'written';
  }

  async put(location: ObjectLocation, body: string): Promise<void> {
    this.putObject(location.bucket, location.key, body);
  }

  async *list(bucket: string, prefix: string): AsyncIterable<string> {
    const keys = [...this.objects.keys()]
      .filter((id) => id.startsWith(`${bucket}/${prefix}`))
      .map((id) => id.slice(bucket.length + 1))
      .sort();
    yield* keys;
  }

  upload(location: ObjectLocation): ObjectUpload {
    const parts: string[] = [];
    return {
      write: async (chunk) => {
        parts.push(chunk);
      },
      complete: async () => this.putObject(location.bucket, location.key, parts.join('')),
      abort: async () => {
        parts.length = 0;
      },
    };
  }

  private id(location: ObjectLocation): string {
    return `${location.bucket}/${location.key}`;
  }

  private bytesOf(location: ObjectLocation): Uint8Array {
    const object = this.objects.get(this.id(location));
    if (object === undefined)
      throw Object.assign(new Error(`NoSuchKey ${this.id(location)}`), { name: 'NoSuchKey' });
    return object.bytes;
  }
}

interface RecordState {
  status: 'running' | 'waiting' | 'done';
  owner: string | undefined;
  leaseUntil: number;
  attempts: number;
}

type MutableJob = { -readonly [Field in keyof JobRecord]: JobRecord[Field] };

export class MemoryLedger implements Ledger {
  readonly jobs = new Map<string, MutableJob>();
  readonly records = new Map<string, RecordState>();
  private readonly ids = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async createJob(job: JobRecord): Promise<boolean> {
    if (this.jobs.has(job.jobId)) return false;
    this.jobs.set(job.jobId, structuredClone(job) as MutableJob);
    return true;
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const job = this.jobs.get(jobId);
    return job === undefined ? undefined : structuredClone(job);
  }

  async claimRecordId(jobId: string, recordId: string, lineNumber: number): Promise<number | undefined> {
    const key = `${jobId}#${recordId}`;
    const holder = this.ids.get(key);
    if (holder !== undefined && holder !== lineNumber) return holder;
    this.ids.set(key, lineNumber);
    return undefined;
  }

  async saveReadProgress(
    jobId: string,
    progress: { readOffset: number; readLine: number; recordsRead: number },
  ) {
    Object.assign(this.job(jobId), progress);
  }

  async setTotal(jobId: string, totalRecords: number): Promise<JobRecord> {
    const job = this.job(jobId);
    job.totalRecords = totalRecords;
    job.totals = { ...job.totals, totalRecordCount: totalRecords };
    if (job.status === 'enqueuing') job.status = 'running';
    return structuredClone(job);
  }

  async failJob(jobId: string, reason: string): Promise<void> {
    Object.assign(this.job(jobId), { status: 'failed', failureReason: reason });
  }

  async isRecordDone(jobId: string, lineNumber: number): Promise<boolean> {
    return this.records.get(`${jobId}#${lineNumber}`)?.status === 'done';
  }

  async leaseRecord(
    jobId: string,
    lineNumber: number,
    owner: string,
    leaseSeconds: number,
  ): Promise<LeaseResult> {
    const key = `${jobId}#${lineNumber}`;
    const state = this.records.get(key);
    if (state?.status === 'done') return { kind: 'done' };
    if (state?.status === 'running' && state.leaseUntil > this.now()) return { kind: 'held' };
    const attempts = (state?.attempts ?? 0) + 1;
    this.records.set(key, {
      status: 'running',
      owner,
      leaseUntil: this.now() + leaseSeconds * 1000,
      attempts,
    });
    return { kind: 'acquired', attempt: attempts };
  }

  async releaseRecord(jobId: string, lineNumber: number, owner: string): Promise<void> {
    const state = this.records.get(`${jobId}#${lineNumber}`);
    if (state?.status === 'running' && state.owner === owner) state.status = 'waiting';
  }

  async completeRecord(jobId: string, completion: RecordCompletion): Promise<boolean> {
    const key = `${jobId}#${completion.lineNumber}`;
    const state = this.records.get(key);
    if (state?.status === 'done') return false;
    this.records.set(key, {
      status: 'done',
      owner: undefined,
      leaseUntil: 0,
      attempts: state?.attempts ?? 0,
    });
    const job = this.job(jobId);
    const totals = job.totals;
    job.doneRecords += 1;
    job.totals = {
      ...totals,
      successRecordCount: totals.successRecordCount + (completion.status === 'succeeded' ? 1 : 0),
      errorRecordCount: totals.errorRecordCount + (completion.status === 'errored' ? 1 : 0),
      canceledRecordCount:
        totals.canceledRecordCount +
        (completion.status === 'canceled' || completion.status === 'expired' ? 1 : 0),
      inputTokenCount: totals.inputTokenCount + completion.inputTokens,
      outputTokenCount: totals.outputTokenCount + completion.outputTokens,
      cacheCreationInputTokenCount: totals.cacheCreationInputTokenCount + completion.cacheCreationInputTokens,
      cacheReadInputTokenCount: totals.cacheReadInputTokenCount + completion.cacheReadInputTokens,
      costNanoUsd: totals.costNanoUsd + completion.costNanoUsd,
    };
    if (completion.family !== undefined) {
      job.familyCounts = {
        ...job.familyCounts,
        [completion.family]: (job.familyCounts[completion.family] ?? 0) + 1,
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

  async finishJob(jobId: string, status: 'completed' | 'cancelled', finishedAt: string): Promise<void> {
    Object.assign(this.job(jobId), { status, finishedAt });
  }

  async cancelJob(jobId: string): Promise<boolean> {
    const job = this.jobs.get(jobId);
    if (job === undefined || !['enqueuing', 'running'].includes(job.status)) return false;
    job.cancelRequested = true;
    return true;
  }

  async recordRetry(jobId: string, kind: RetryKind): Promise<void> {
    const job = this.job(jobId);
    job.retries = {
      retried: job.retries.retried + (kind === 'budget-wait' ? 0 : 1),
      bedrockThrottles: job.retries.bedrockThrottles + (kind === 'bedrock-throttle' ? 1 : 0),
      budgetWaits: job.retries.budgetWaits + (kind === 'budget-wait' ? 1 : 0),
    };
  }

  async *listActiveJobs(): AsyncIterable<JobRecord> {
    for (const job of this.jobs.values()) {
      if (['enqueuing', 'running', 'finalizing'].includes(job.status)) yield structuredClone(job);
    }
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

  async send(messages: readonly RecordMessage[]): Promise<void> {
    this.sent.push(...messages);
  }

  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    this.visibilityChanges.push({ receiptHandle, seconds });
  }
}

/** A budget of `tokensPerWindow` per minute window on a clock the test moves. */
export class MemoryBudget implements TokenBudget {
  readonly used = new Map<string, number>();
  readonly throttles: string[] = [];
  successes = 0;

  constructor(
    private readonly tokensPerWindow = Number.POSITIVE_INFINITY,
    private readonly now: () => number = Date.now,
  ) {}

  async reserve(key: string, tokens: number): Promise<BudgetReservation | { retryAfterSeconds: number }> {
    const window = Math.floor(this.now() / 60_000);
    const id = `${key}@${window}`;
    const used = this.used.get(id) ?? 0;
    if (used + tokens > this.tokensPerWindow && used > 0) {
      return { retryAfterSeconds: Math.ceil(((window + 1) * 60_000 - this.now()) / 1000) };
    }
    this.used.set(id, used + tokens);
    return { key, window, tokens };
  }

  async settle(reservation: BudgetReservation, usedTokens: number): Promise<void> {
    const id = `${reservation.key}@${reservation.window}`;
    this.used.set(id, (this.used.get(id) ?? 0) - reservation.tokens + usedTokens);
  }

  async recordThrottle(key: string): Promise<void> {
    this.throttles.push(key);
  }

  async recordSuccess(): Promise<void> {
    this.successes += 1;
  }
}

/** Answers every call from `answer`, which may throw to fail it. */
export class ScriptedModel implements ModelInvoker {
  readonly calls: Array<{ modelId: string; body: Record<string, unknown> }> = [];

  constructor(
    private readonly answer: (
      modelId: string,
      body: Record<string, unknown>,
      call: number,
    ) => MessagesResponse,
  ) {}

  async invoke(modelId: string, bodyJson: string): Promise<MessagesResponse> {
    const body = JSON.parse(bodyJson) as Record<string, unknown>;
    this.calls.push({ modelId, body });
    return this.answer(modelId, body, this.calls.length);
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

  async publish(detailType: string, detail: Record<string, unknown>): Promise<void> {
    this.published.push({ detailType, detail });
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
