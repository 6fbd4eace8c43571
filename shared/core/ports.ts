import type { BucketState } from '../budget/bucket.ts';
import type { ServiceTier } from '../contract/service-tiers.ts';
import type { DeadlineAlarm } from '../messages/deadline-alarm.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { MessagesResponse } from '../output/result-records.ts';
import type { BudgetReservation, ObjectInfo, ObjectLocation, UploadedPart } from './model.ts';

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
  /** Writes the object, with user metadata when given (a file's options ride on it). */
  put(
    location: ObjectLocation,
    body: string | Uint8Array,
    contentType: string,
    metadata?: Readonly<Record<string, string>>,
  ): Promise<void>;
  /** Removes the object; removing one that is not there is no error. */
  remove(location: ObjectLocation): Promise<void>;
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

/** A call's service tier (Bedrock's default when absent). */
export interface InvokeTarget extends ModelTarget {
  readonly serviceTier?: ServiceTier;
}

/** Bedrock's answer, and the service tier that served it (when Bedrock says). */
export interface ModelAnswer {
  readonly response: MessagesResponse;
  readonly servedTier: ServiceTier | undefined;
}

export interface ModelInvoker {
  invoke(target: InvokeTarget, bodyJson: string, signal: AbortSignal): Promise<ModelAnswer>;
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
