import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  MESSAGE_BATCHES_PREFIX,
  messageBatchInputKey,
  messageBatchRecordKey,
  outputLocations,
} from '../contract/storage-layout.ts';
import { type Clock, isoTime } from '../core/clock.ts';
import type { JobDirectory, Jobs } from '../core/ledger.ts';
import { ENDED_JOB_STATUSES, type JobRecord, type JobSettings, type ObjectLocation } from '../core/model.ts';
import type { ObjectStore } from '../core/ports.ts';
import { ConfigurationError, PipelineError } from '../errors.ts';
import { jobSettingsFrom } from '../pipeline/job.ts';

/**
 * Anthropic's Message Batches API over the pipeline: a batch is a job whose input file holds its requests
 * (`inputs/message-batches/<id>.jsonl`, Anthropic batch lines, which the pipeline runs and answers in
 * Anthropic's result form), and a small record of what it was created with (`message-batches/<id>.json`).
 * Its counts come from the ledger, its results are the job's output.
 */

/** Anthropic's limits for one batch. */
const MESSAGE_BATCH_LIMITS = { requests: 100_000, bytes: 256 * 1024 * 1024 } as const;

/** A batch expires (its unfinished requests with it) a day after it was created, as Anthropic's do. */
const EXPIRES_AFTER_MS = 24 * 60 * 60_000;

/** The errors the API answers with, as Anthropic's error types. */
export const MESSAGE_BATCH_ERRORS = {
  INVALID_BATCH_REQUEST: { status: 400, type: 'invalid_request_error' },
  BATCH_TOO_LARGE: { status: 413, type: 'request_too_large' },
  BATCH_NOT_FOUND: { status: 404, type: 'not_found_error' },
  BATCH_NOT_ENDED: { status: 400, type: 'invalid_request_error' },
  BATCH_NOT_STARTED: { status: 409, type: 'invalid_request_error' },
} as const;

type MessageBatchErrorCode = keyof typeof MESSAGE_BATCH_ERRORS;

export class MessageBatchError extends PipelineError {
  constructor(
    readonly reason: MessageBatchErrorCode,
    message: string,
  ) {
    super(reason, message);
  }
}

/** A batch as Anthropic's API shows it. */
export interface MessageBatch {
  readonly id: string;
  readonly type: 'message_batch';
  readonly processing_status: 'in_progress' | 'canceling' | 'ended';
  readonly request_counts: {
    readonly processing: number;
    readonly succeeded: number;
    readonly errored: number;
    readonly canceled: number;
    readonly expired: number;
  };
  readonly created_at: string;
  readonly expires_at: string;
  readonly ended_at: string | null;
  readonly cancel_initiated_at: string | null;
  readonly archived_at: string | null;
  readonly results_url: string | null;
}

/** A page of batches, newest first. */
interface MessageBatchPage {
  readonly data: readonly MessageBatch[];
  readonly has_more: boolean;
  readonly first_id: string | null;
  readonly last_id: string | null;
}

export interface MessageBatchPorts {
  readonly store: ObjectStore;
  readonly ledger: Pick<JobDirectory, 'newestJobOf'> & Pick<Jobs, 'cancelJob'>;
  readonly bucket: string;
  /** The deployment's settings for files that choose none: a batch's options are checked against them. */
  readonly jobDefaults: JobSettings;
  readonly clock: Pick<Clock, 'now' | 'sleepUntil'>;
  /** Where a batch's results are fetched from (the API's own address for them, or a presigned one). */
  readonly resultsUrl: (batchId: string, job: JobRecord) => Promise<string> | string;
  /** Every caller sees every batch; by default a caller sees only the batches it created. */
  readonly sharedAcrossCallers?: boolean;
}

/** Anthropic's rule for a request's custom_id. */
const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;

const createRequestSchema = z.object({
  requests: z
    .array(
      z.object({
        custom_id: z.string().regex(CUSTOM_ID, 'must be 1 to 64 letters, digits, "_" or "-"'),
        params: z.record(z.string(), z.unknown()),
      }),
    )
    .min(1, 'must hold at least one request'),
});

/** What a batch was created with, kept beside its input. */
const batchRecordSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  createdAt: z.iso.datetime(),
  requests: z.number().int().positive(),
  cancelInitiatedAt: z.iso.datetime().optional(),
  /** Who created it (an IAM principal), where callers are told apart. */
  owner: z.string().optional(),
});

type BatchRecord = z.infer<typeof batchRecordSchema>;

/** How long a cancel waits for a just-created batch's job to appear before asking to be sent again. */
const JOB_APPEARS_WITHIN_MS = 5_000;
/** Batch records a list reads at once while it looks for the caller's. */
const LIST_READS_AT_ONCE = 16;

export class MessageBatches {
  /** The API as `caller` sees it (an IAM principal, an access key): undefined where callers are not told apart. */
  constructor(
    private readonly ports: MessageBatchPorts,
    private readonly caller?: string,
  ) {}

  /**
   * Creates a batch: its requests become an input file, which starts its job. Only the shape is checked
   * here; each request's params are checked as the job reads them, a bad one becoming an `errored` result.
   */
  async create(
    body: unknown,
    bodyBytes: number,
    options: Readonly<Record<string, string>> = {},
  ): Promise<MessageBatch> {
    checkOptions(options, this.ports.jobDefaults);
    const requests = requestsOf(body, bodyBytes);
    const now = this.ports.clock.now();
    const expiresAt = new Date(now + EXPIRES_AFTER_MS).toISOString();
    const record: BatchRecord = {
      v: 1,
      id: newBatchId(now),
      createdAt: new Date(now).toISOString(),
      requests: requests.length,
      ...(this.caller === undefined ? {} : { owner: this.caller }),
    };
    await this.putRecord(record);
    const lines = requests.map((request) => JSON.stringify(request)).join('\n');
    await this.ports.store.put(
      this.at(messageBatchInputKey(record.id)),
      `${lines}\n`,
      'application/jsonl',
      // Its unfinished requests end `expired` a day after it was created, as Anthropic's do (no option moves it).
      { ...options, 'expires-at': expiresAt },
    );
    return this.batchOf(record, undefined);
  }

  async retrieve(batchId: string): Promise<MessageBatch> {
    const record = await this.record(batchId);
    return this.batchOf(record, await this.jobOf(record));
  }

  /**
   * Batches newest first: `limit` (1 to 1,000, 20 by default) after `afterId` or before `beforeId`. Ids sort
   * by creation time, so the page is found from the keys alone; only the records the page needs are read
   * (the caller's own: others' are passed over).
   */
  async list(query: { limit?: number; beforeId?: string; afterId?: string }): Promise<MessageBatchPage> {
    const limit = Math.min(1_000, Math.max(1, query.limit ?? 20));
    const { afterId, beforeId } = query;
    const newestFirst = (await this.batchIds())
      .reverse()
      .filter((id) => afterId === undefined || id < afterId);
    let page: BatchRecord[];
    let hasMore: boolean;
    if (beforeId === undefined) {
      const found = await this.firstVisible(newestFirst, limit + 1);
      page = found.slice(0, limit);
      hasMore = found.length > limit;
    } else {
      // The `limit` batches just newer than `beforeId`: read from it upwards, shown newest first.
      page = (await this.firstVisible(newestFirst.filter((id) => id > beforeId).reverse(), limit)).reverse();
      const oldest = page.at(-1);
      hasMore =
        oldest !== undefined &&
        (
          await this.firstVisible(
            newestFirst.filter((id) => id < oldest.id),
            1,
          )
        ).length > 0;
    }
    const data = await Promise.all(
      page.map(async (record) => this.batchOf(record, await this.jobOf(record))),
    );
    return { data, has_more: hasMore, first_id: page[0]?.id ?? null, last_id: page.at(-1)?.id ?? null };
  }

  /** Asks the batch's job to stop: requests not yet run end `canceled`, those under way as they end. */
  async cancel(batchId: string): Promise<MessageBatch> {
    const record = await this.record(batchId);
    const job = await this.jobAppearing(record);
    if (!ENDED_JOB_STATUSES.has(job.status)) {
      await this.ports.ledger.cancelJob(job.jobId, 'canceled through the Message Batches API');
      if (record.cancelInitiatedAt === undefined)
        await this.putRecord({ ...record, cancelInitiatedAt: isoTime(this.ports.clock) });
    }
    return this.retrieve(batchId);
  }

  /**
   * Deletes an ended batch: its results, its input and the record of it (last, so that a delete cut short
   * can be made again). A batch still running cannot be deleted: cancel it first.
   */
  async delete(batchId: string): Promise<{ readonly id: string; readonly type: 'message_batch_deleted' }> {
    const record = await this.record(batchId);
    const job = await this.jobOf(record);
    if (job !== undefined && !ENDED_JOB_STATUSES.has(job.status))
      throw new MessageBatchError(
        'BATCH_NOT_ENDED',
        `Batch ${batchId} cannot be deleted while it is processing: cancel it, then delete it once it has ended.`,
      );
    if (job === undefined)
      throw new MessageBatchError('BATCH_NOT_STARTED', `Batch ${batchId} has not started yet: try again.`);
    const { output, manifest } = outputLocations(job);
    for (const location of [output, manifest, this.at(messageBatchInputKey(batchId))])
      await this.ports.store.remove(location);
    await this.ports.store.remove(this.at(messageBatchRecordKey(batchId)));
    return { id: batchId, type: 'message_batch_deleted' };
  }

  /**
   * The batch's results, as JSON Lines in input order, once it has ended: where they are, and their bytes as
   * a stream read only when iterated.
   */
  async results(batchId: string): Promise<{ location: ObjectLocation; lines: AsyncIterable<Uint8Array> }> {
    const record = await this.record(batchId);
    const job = await this.jobOf(record);
    if (job === undefined || !ENDED_JOB_STATUSES.has(job.status))
      throw new MessageBatchError(
        'BATCH_NOT_ENDED',
        `Batch ${batchId} has not ended yet: its results come once it has.`,
      );
    const location = outputLocations(job).output;
    return { location, lines: this.ports.store.stream(location, 0) };
  }

  private async batchOf(record: BatchRecord, job: JobRecord | undefined): Promise<MessageBatch> {
    const ended = job !== undefined && ENDED_JOB_STATUSES.has(job.status);
    const totals = job?.totals;
    const succeeded = totals?.successRecordCount ?? 0;
    const expired = totals?.expiredRecordCount ?? 0;
    const canceled = (totals?.canceledRecordCount ?? 0) - expired;
    const counted = succeeded + canceled + expired + (totals?.errorRecordCount ?? 0);
    // A job that ended before answering every request (its file refused whole) leaves the rest errored.
    const errored = (totals?.errorRecordCount ?? 0) + (ended ? Math.max(0, record.requests - counted) : 0);
    return {
      id: record.id,
      type: 'message_batch',
      processing_status: ended ? 'ended' : job?.cancelRequested === true ? 'canceling' : 'in_progress',
      request_counts: {
        processing: ended ? 0 : Math.max(0, record.requests - counted),
        succeeded,
        errored,
        canceled,
        expired,
      },
      created_at: record.createdAt,
      expires_at: new Date(Date.parse(record.createdAt) + EXPIRES_AFTER_MS).toISOString(),
      ended_at: ended ? (job?.finishedAt ?? null) : null,
      cancel_initiated_at: record.cancelInitiatedAt ?? null,
      archived_at: null,
      results_url: ended && job !== undefined ? await this.ports.resultsUrl(record.id, job) : null,
    };
  }

  private async record(batchId: string): Promise<BatchRecord> {
    const bytes = /^msgbatch_[0-9A-Za-z]{1,64}$/.test(batchId)
      ? await this.ports.store.read(this.at(messageBatchRecordKey(batchId)))
      : undefined;
    const record =
      bytes === undefined
        ? undefined
        : batchRecordSchema.parse(JSON.parse(Buffer.from(bytes).toString('utf8')));
    // Another caller's batch is as good as absent: its id tells nothing.
    const hidden =
      record?.owner !== undefined && this.caller !== undefined && this.ports.sharedAcrossCallers !== true
        ? record.owner !== this.caller
        : false;
    if (record === undefined || hidden)
      throw new MessageBatchError('BATCH_NOT_FOUND', `No message batch ${batchId}.`);
    return record;
  }

  /** Every batch's id, oldest first (the keys' order). */
  private async batchIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const key of this.ports.store.list(this.ports.bucket, MESSAGE_BATCHES_PREFIX))
      if (key.endsWith('.json')) ids.push(key.slice(MESSAGE_BATCHES_PREFIX.length, -'.json'.length));
    return ids.sort();
  }

  /** The first `count` batches of `ids`, in their order, that the caller may see: read a few at a time. */
  private async firstVisible(ids: readonly string[], count: number): Promise<BatchRecord[]> {
    const found: BatchRecord[] = [];
    for (let start = 0; start < ids.length && found.length < count; start += LIST_READS_AT_ONCE) {
      const chunk = ids.slice(start, start + LIST_READS_AT_ONCE);
      for (const record of await Promise.all(chunk.map((id) => this.visibleRecord(id))))
        if (record !== undefined && found.length < count) found.push(record);
    }
    return found;
  }

  /** The batch's record, or undefined when the caller may not see it (or it is gone). */
  private async visibleRecord(batchId: string): Promise<BatchRecord | undefined> {
    try {
      return await this.record(batchId);
    } catch (error) {
      if (error instanceof MessageBatchError && error.reason === 'BATCH_NOT_FOUND') return undefined;
      throw error;
    }
  }

  private putRecord(record: BatchRecord): Promise<void> {
    return this.ports.store.put(
      this.at(messageBatchRecordKey(record.id)),
      JSON.stringify(record),
      'application/json',
    );
  }

  private jobOf(record: BatchRecord): Promise<JobRecord | undefined> {
    return this.ports.ledger.newestJobOf({ bucket: this.ports.bucket, key: messageBatchInputKey(record.id) });
  }

  /** The batch's job, waiting a little for one created a moment ago (its upload starts it). */
  private async jobAppearing(record: BatchRecord): Promise<JobRecord> {
    const { clock } = this.ports;
    const until = clock.now() + JOB_APPEARS_WITHIN_MS;
    for (let job = await this.jobOf(record); ; job = await this.jobOf(record)) {
      if (job !== undefined) return job;
      if (clock.now() >= until)
        throw new MessageBatchError(
          'BATCH_NOT_STARTED',
          `Batch ${record.id} has not started yet: try again.`,
        );
      await clock.sleepUntil(clock.now() + 200, AbortSignal.timeout(JOB_APPEARS_WITHIN_MS));
    }
  }

  private at(key: string) {
    return { bucket: this.ports.bucket, key };
  }
}

/** A create's requests, checked in shape and against Anthropic's limits (their params are the job's to check). */
function requestsOf(body: unknown, bodyBytes: number) {
  if (bodyBytes > MESSAGE_BATCH_LIMITS.bytes)
    throw new MessageBatchError(
      'BATCH_TOO_LARGE',
      `A batch may be at most ${MESSAGE_BATCH_LIMITS.bytes} bytes.`,
    );
  const parsed = createRequestSchema.safeParse(body);
  if (!parsed.success)
    throw new MessageBatchError('INVALID_BATCH_REQUEST', z.prettifyError(parsed.error).replaceAll('\n', ' '));
  const { requests } = parsed.data;
  if (requests.length > MESSAGE_BATCH_LIMITS.requests)
    throw new MessageBatchError(
      'BATCH_TOO_LARGE',
      `A batch may hold at most ${MESSAGE_BATCH_LIMITS.requests} requests; this one has ${requests.length}.`,
    );
  const seen = new Set<string>();
  for (const { custom_id } of requests) {
    if (seen.has(custom_id))
      throw new MessageBatchError(
        'INVALID_BATCH_REQUEST',
        `custom_id "${custom_id}" is used more than once.`,
      );
    seen.add(custom_id);
  }
  return requests;
}

/** A batch's options are a file's options (lane, deadline, tier...): checked now, so a bad one fails the create. */
function checkOptions(options: Readonly<Record<string, string>>, defaults: JobSettings): void {
  try {
    jobSettingsFrom(options, defaults);
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    throw new MessageBatchError(
      'INVALID_BATCH_REQUEST',
      error.problems.map((problem) => problem.replace(/^file options? /, 'option ')).join('; '),
    );
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * `msgbatch_` and 24 characters: 10 of the creation time (milliseconds, Crockford base32), so ids sort as
 * batches were created, then 14 random ones.
 */
function newBatchId(now: number, random: (bytes: number) => Uint8Array = randomBytes): string {
  let time = '';
  for (let rest = now, index = 0; index < 10; index += 1, rest = Math.floor(rest / 32))
    time = `${CROCKFORD[rest % 32]}${time}`;
  const tail = [...random(14)].map((byte) => CROCKFORD[byte % 32]).join('');
  return `msgbatch_${time}${tail}`;
}
