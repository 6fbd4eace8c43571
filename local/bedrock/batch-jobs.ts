import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Catalog } from '../../shared/catalog/catalog.ts';
import {
  type BatchRecordFaults,
  BatchRecordWriter,
  type InputRecord,
  readBatchInput,
} from './batch-records.ts';
import { mulberry32 } from './completion.ts';
import { identifyModel } from './validation.ts';
import { WireError } from './wire-errors.ts';

/** Bedrock's batch job states. */
export type BatchJobStatus =
  | 'Submitted'
  | 'Validating'
  | 'Scheduled'
  | 'InProgress'
  | 'Completed'
  | 'PartiallyCompleted'
  | 'Failed'
  | 'Stopping'
  | 'Stopped'
  | 'Expired';

const ENDED: ReadonlySet<BatchJobStatus> = new Set([
  'Completed',
  'PartiallyCompleted',
  'Failed',
  'Stopped',
  'Expired',
]);

/** How long Bedrock takes, in real milliseconds, scaled by the stand-in's speed. */
export interface BatchTurnaround {
  readonly validateMs: number;
  readonly scheduleMs: number;
  readonly perRecordMs: number;
  /** One hour of a job's timeoutDurationInHours: a job past its hours ends Expired. */
  readonly hourMs: number;
}

export const DEFAULT_TURNAROUND: BatchTurnaround = {
  validateMs: 300,
  scheduleMs: 700,
  perRecordMs: 2,
  hourMs: 3_600_000,
};

/** Where the jobs' input and output are: the local S3, addressed by s3:// URIs. */
export interface BatchStorage {
  /** The object URIs under a prefix URI (or the one object a URI names). */
  list(uri: string): Promise<string[]>;
  read(uri: string): Promise<string | undefined>;
  write(uri: string, body: string): Promise<void>;
}

/** A job's state change, as Bedrock's EventBridge event details it. */
export interface BatchJobChangeDetail {
  readonly accountId: string;
  readonly batchJobName: string;
  readonly batchJobArn: string;
  readonly batchModelId: string;
  readonly status: BatchJobStatus;
  readonly failureMessage?: string;
}

export interface BatchJobSettings {
  readonly region: string;
  readonly catalog: Catalog;
  readonly seed: number;
  readonly storage: BatchStorage | undefined;
  readonly turnaround: BatchTurnaround;
  readonly faults: BatchRecordFaults & {
    /** The share of jobs that fail as a whole once in progress (a `[[batch:fail-job]]` line always does). */
    readonly jobFailureRate?: number;
  };
}

/** A job as GetModelInvocationJob and ListModelInvocationJobs describe it. */
export interface BatchJobDescription {
  readonly jobArn: string;
  readonly jobName: string;
  readonly modelId: string;
  readonly roleArn: string;
  readonly clientRequestToken?: string;
  readonly status: BatchJobStatus;
  readonly message?: string;
  readonly submitTime: string;
  readonly lastModifiedTime: string;
  readonly endTime?: string;
  readonly jobExpirationTime: string;
  readonly timeoutDurationInHours: number;
  readonly inputDataConfig: { readonly s3InputDataConfig: { readonly s3Uri: string } };
  readonly outputDataConfig: { readonly s3OutputDataConfig: { readonly s3Uri: string } };
  readonly totalRecordCount?: number;
  readonly processedRecordCount?: number;
  readonly successRecordCount?: number;
  readonly errorRecordCount?: number;
}

interface BatchJob {
  readonly jobArn: string;
  readonly jobId: string;
  readonly request: CreateRequest;
  readonly submitTime: number;
  readonly expiresAt: number;
  status: BatchJobStatus;
  message: string | undefined;
  lastModifiedTime: number;
  endTime: number | undefined;
  stopRequested: boolean;
  counts: { total: number; processed: number; success: number; error: number } | undefined;
}

interface CreateRequest {
  readonly jobName: string;
  readonly roleArn: string;
  readonly modelId: string;
  readonly inputUri: string;
  readonly outputUri: string;
  readonly timeoutHours: number;
  readonly clientRequestToken: string | undefined;
}

const JOB_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9+\-.])*$/;
const ROLE_ARN = /^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role\/.+$/;
const S3_URI = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/;
const FAIL_JOB_MARKER = '[[batch:fail-job]]';

/**
 * Bedrock's batch inference control plane: CreateModelInvocationJob (idempotent by clientRequestToken, within
 * the jobs-in-flight quota), GetModelInvocationJob, StopModelInvocationJob and ListModelInvocationJobs. Each
 * job moves through Bedrock's states on the turnaround, reads its JSONL input from S3, checks the catalog's
 * record and size limits, answers every record as InvokeModel would (or with an injected error, or not at
 * all) and writes `<input file>.out` in shuffled order and `manifest.json.out` under `<output>/<job id>/`.
 */
export class BatchJobBoard {
  private readonly jobs: BatchJob[] = [];
  private readonly running = new Set<Promise<void>>();
  /** Cuts every turnaround short when the stand-in closes. */
  private readonly closing = new AbortController();
  private readonly random: () => number;
  private readonly listeners: Array<(change: BatchJobChangeDetail) => void> = [];

  constructor(
    private readonly settings: BatchJobSettings,
    private readonly now: () => number,
  ) {
    this.random = mulberry32(settings.seed ^ 0xba7c4);
  }

  create(body: unknown): { jobArn: string } {
    const request = this.validRequest(body);
    const earlier =
      request.clientRequestToken === undefined
        ? undefined
        : this.jobs.find((job) => job.request.clientRequestToken === request.clientRequestToken);
    if (earlier !== undefined) return { jobArn: earlier.jobArn };
    const inFlight = this.jobs.filter((job) => !ENDED.has(job.status)).length;
    if (inFlight >= this.settings.catalog.batch.jobsInFlightPerRegion) {
      throw new WireError(
        'ServiceQuotaExceededException',
        `You have reached the maximum number of batch inference jobs in progress or submitted (${inFlight}).`,
      );
    }
    const jobId = randomBytes(6).toString('hex');
    const submitTime = this.now();
    const job: BatchJob = {
      jobArn: `arn:aws:bedrock:${this.settings.region}:000000000000:model-invocation-job/${jobId}`,
      jobId,
      request,
      submitTime,
      expiresAt: submitTime + request.timeoutHours * this.settings.turnaround.hourMs,
      status: 'Submitted',
      message: undefined,
      lastModifiedTime: submitTime,
      endTime: undefined,
      stopRequested: false,
      counts: undefined,
    };
    this.jobs.push(job);
    const run = this.run(job).catch((error: unknown) => {
      console.error('bedrock stand-in: a batch job failed unexpectedly', error);
      this.end(job, 'Failed', 'An internal error occurred.');
    });
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return { jobArn: job.jobArn };
  }

  get(identifier: string): BatchJobDescription {
    return describe(this.find(identifier));
  }

  stop(identifier: string): void {
    const job = this.find(identifier);
    if (ENDED.has(job.status) || job.status === 'Stopping') {
      throw new WireError('ConflictException', `The job is ${job.status} and cannot be stopped.`);
    }
    job.stopRequested = true;
    this.move(job, 'Stopping');
  }

  list(query: URLSearchParams): { invocationJobSummaries: BatchJobDescription[]; nextToken?: string } {
    const status = query.get('statusEquals');
    const nameContains = query.get('nameContains');
    const after = query.get('submitTimeAfter');
    const before = query.get('submitTimeBefore');
    const matching = this.jobs
      .filter((job) => status === null || job.status === status)
      .filter((job) => nameContains === null || job.request.jobName.includes(nameContains))
      .filter((job) => after === null || job.submitTime > Date.parse(after))
      .filter((job) => before === null || job.submitTime < Date.parse(before));
    if (query.get('sortOrder') !== 'Ascending') matching.reverse();
    const start = Number(query.get('nextToken') ?? 0);
    const size = Number(query.get('maxResults') ?? 1_000);
    const page = matching.slice(start, start + size).map(describe);
    return start + size < matching.length
      ? { invocationJobSummaries: page, nextToken: String(start + size) }
      : { invocationJobSummaries: page };
  }

  /** Hears every state change, as Bedrock's EventBridge events tell them. */
  onChange(listener: (change: BatchJobChangeDetail) => void): void {
    this.listeners.push(listener);
  }

  /** Every job ever created, oldest first: what tests check for second jobs. */
  all(): BatchJobDescription[] {
    return this.jobs.map(describe);
  }

  /** Waits for the jobs in flight to end (close stops them first). */
  async close(): Promise<void> {
    for (const job of this.jobs) if (!ENDED.has(job.status)) job.stopRequested = true;
    this.closing.abort();
    await Promise.all([...this.running]);
  }

  private async run(job: BatchJob): Promise<void> {
    const { turnaround, storage, catalog } = this.settings;
    if (!(await this.pause(job, turnaround.validateMs))) return;
    this.move(job, 'Validating');
    if (storage === undefined) return this.end(job, 'Failed', 'The stand-in was started without S3.');
    const input = await readBatchInput(storage, job.request.inputUri, catalog);
    if ('problem' in input) return this.end(job, 'Failed', input.problem);
    const model = identifyModel(job.request.modelId, this.settings.region, catalog);
    const minimum = catalog.batchMinimumRecords(model);
    if (input.records.length < minimum) {
      return this.end(
        job,
        'Failed',
        `The number of records in the input (${input.records.length}) is less than the minimum of ${minimum} records required for a batch inference job with this model.`,
      );
    }
    job.counts = { total: input.records.length, processed: 0, success: 0, error: 0 };
    if (!(await this.pause(job, turnaround.scheduleMs))) return;
    this.move(job, 'Scheduled');
    if (!(await this.pause(job, turnaround.scheduleMs))) return;
    this.move(job, 'InProgress');
    await this.process(job, input.records);
  }

  private async process(job: BatchJob, records: readonly InputRecord[]): Promise<void> {
    const { settings } = this;
    const failAt = this.failurePoint(records);
    const writer = new BatchRecordWriter({ ...settings, modelId: job.request.modelId, random: this.random });
    const counts = job.counts ?? { total: records.length, processed: 0, success: 0, error: 0 };
    const step = Math.max(1, Math.floor(20 / Math.max(settings.turnaround.perRecordMs, 0.01)));
    for (const [index, record] of records.entries()) {
      if (index === failAt)
        return this.end(job, 'Failed', 'An internal error occurred while processing records.');
      if (job.stopRequested || this.now() > job.expiresAt) break;
      if (index % step === 0 && !(await this.pause(job, settings.turnaround.perRecordMs * step, true))) break;
      const answered = writer.answer(record);
      if (answered === 'missing') continue;
      counts.processed += 1;
      counts[answered] += 1;
    }
    await writer.flush(settings.storage, job.request.outputUri, job.jobId, counts);
    if (job.stopRequested) return this.end(job, 'Stopped', undefined);
    if (counts.processed + writer.missing < counts.total)
      return this.end(job, 'Expired', 'The job did not finish before its timeout.');
    this.end(job, counts.error > 0 ? 'PartiallyCompleted' : 'Completed', undefined);
  }

  /** The record at which an injected whole-job failure happens, halfway through; none without one. */
  private failurePoint(records: readonly InputRecord[]): number | undefined {
    const rate = this.settings.faults.jobFailureRate ?? 0;
    const marked = records.some((record) => record.text.includes(FAIL_JOB_MARKER));
    return marked || (rate > 0 && this.random() < rate) ? Math.floor(records.length / 2) : undefined;
  }

  /**
   * Waits a scaled turnaround. False when the job was stopped meanwhile (and ended, unless it is processing
   * records, which ends with what it finished).
   */
  private async pause(job: BatchJob, ms: number, processing = false): Promise<boolean> {
    if (ms > 0) await sleep(ms, undefined, { signal: this.closing.signal }).catch(() => undefined);
    if (!job.stopRequested) return true;
    if (!processing) this.end(job, 'Stopped', undefined);
    return false;
  }

  private move(job: BatchJob, status: BatchJobStatus): void {
    if (ENDED.has(job.status)) return;
    if (job.stopRequested && status !== 'Stopping') return;
    job.status = status;
    job.lastModifiedTime = this.now();
    this.announce(job);
  }

  private end(job: BatchJob, status: BatchJobStatus, message: string | undefined): void {
    if (ENDED.has(job.status)) return;
    job.status = status;
    job.message = message;
    job.lastModifiedTime = this.now();
    job.endTime = job.lastModifiedTime;
    this.announce(job);
  }

  private announce(job: BatchJob): void {
    const change: BatchJobChangeDetail = {
      accountId: '000000000000',
      batchJobName: job.request.jobName,
      batchJobArn: job.jobArn,
      batchModelId: job.request.modelId,
      status: job.status,
      ...(job.message === undefined ? {} : { failureMessage: job.message }),
    };
    for (const listener of this.listeners) listener(change);
  }

  private find(identifier: string): BatchJob {
    const job = this.jobs.find(
      (candidate) => candidate.jobArn === identifier || candidate.jobId === identifier,
    );
    if (job === undefined)
      throw new WireError(
        'ResourceNotFoundException',
        `The model invocation job ${identifier} was not found.`,
      );
    return job;
  }

  private validRequest(body: unknown): CreateRequest {
    const value = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const text = (field: string): string => {
      const found = value[field];
      if (typeof found !== 'string' || found.length === 0)
        throw new WireError('ValidationException', `1 validation error detected: ${field} must not be null.`);
      return found;
    };
    const jobName = text('jobName');
    if (jobName.length > 63 || !JOB_NAME.test(jobName))
      throw new WireError(
        'ValidationException',
        `Value '${jobName}' at 'jobName' failed to satisfy constraint.`,
      );
    const roleArn = text('roleArn');
    if (!ROLE_ARN.test(roleArn))
      throw new WireError(
        'ValidationException',
        `Value '${roleArn}' at 'roleArn' failed to satisfy constraint.`,
      );
    const modelId = text('modelId');
    identifyModel(modelId, this.settings.region, this.settings.catalog);
    const uri = (config: string, inner: string): string => {
      const found = (value[config] as Record<string, Record<string, unknown>> | undefined)?.[inner]?.s3Uri;
      if (typeof found !== 'string' || !S3_URI.test(found))
        throw new WireError('ValidationException', `${config}.${inner}.s3Uri must be an s3:// URI.`);
      return found;
    };
    const limits = this.settings.catalog.batch.timeoutHours;
    const timeoutHours = value.timeoutDurationInHours ?? limits.maximum;
    if (typeof timeoutHours !== 'number' || timeoutHours < limits.minimum || timeoutHours > limits.maximum)
      throw new WireError(
        'ValidationException',
        `timeoutDurationInHours must be between ${limits.minimum} and ${limits.maximum}.`,
      );
    const token = value.clientRequestToken;
    return {
      jobName,
      roleArn,
      modelId,
      inputUri: uri('inputDataConfig', 's3InputDataConfig'),
      outputUri: uri('outputDataConfig', 's3OutputDataConfig'),
      timeoutHours,
      clientRequestToken: typeof token === 'string' ? token : undefined,
    };
  }
}

function describe(job: BatchJob): BatchJobDescription {
  const iso = (time: number) => new Date(time).toISOString();
  const { request, counts } = job;
  return {
    jobArn: job.jobArn,
    jobName: request.jobName,
    modelId: request.modelId,
    roleArn: request.roleArn,
    ...(request.clientRequestToken === undefined ? {} : { clientRequestToken: request.clientRequestToken }),
    status: job.status,
    ...(job.message === undefined ? {} : { message: job.message }),
    submitTime: iso(job.submitTime),
    lastModifiedTime: iso(job.lastModifiedTime),
    ...(job.endTime === undefined ? {} : { endTime: iso(job.endTime) }),
    jobExpirationTime: iso(job.expiresAt),
    timeoutDurationInHours: request.timeoutHours,
    inputDataConfig: { s3InputDataConfig: { s3Uri: request.inputUri } },
    outputDataConfig: { s3OutputDataConfig: { s3Uri: request.outputUri } },
    ...(counts === undefined
      ? {}
      : {
          totalRecordCount: counts.total,
          processedRecordCount: counts.processed,
          successRecordCount: counts.success,
          errorRecordCount: counts.error,
        }),
  };
}
