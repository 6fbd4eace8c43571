import type { CallCost, ReservationEstimator } from '../budget/reservation-estimate.ts';
import type { CacheTtl } from '../caching/cache-ttl.ts';
import type { Catalog } from '../catalog/catalog.ts';
import type { Failure, RetryPolicy } from '../failures.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { RecordOutcome } from '../output/result-records.ts';
import type { Invocation } from '../request/build-request.ts';
import type { Clock } from './clock.ts';
import type { CompletionPorts, FinishedRecords } from './complete.ts';
import { addRetries, NO_RETRIES } from './job.ts';
import type { JobRecord, JobRetries, LeaseResult, RecordCompletion, StoredResult } from './model.ts';
import type { ModelInvoker, TokenBudget } from './ports.ts';
import type { SpendingCaps } from './spending-caps.ts';

/** What a worker's batch is made of and gives back: its ports and settings, its calls, their verdicts. */

export interface WorkerPorts extends CompletionPorts {
  readonly model: ModelInvoker;
  readonly budget: TokenBudget;
}

export interface WorkerSettings {
  readonly policy: RetryPolicy;
  /** Quota tokens one output token costs. */
  readonly outputBurndown: number;
  /** How long an attempt holds its record; longer than the function can run. */
  readonly leaseSeconds: number;
  /** Who holds a lease: unique per invocation. */
  readonly owner: string;
  /** What calls cost the quota, learnt from the calls answered so far (it outlives one invocation). */
  readonly reservations: ReservationEstimator;
  /**
   * The quota the budget spends, in tokens per minute, where a pool's bucket does not say its own: how many
   * calls a batch runs at once follows from it.
   */
  readonly tokensPerMinute: number;
  /** Inputs estimated above this many tokens are counted exactly (CountTokens) before reserving for them. */
  readonly countTokensAbove: number;
  readonly clock: Clock;
  /** Seconds before trying again a record another worker holds right now. */
  readonly heldRetrySeconds?: number;
  /** How long a shared prefix's writer holds the write before another may take it over; a minute unless given. */
  readonly prefixClaimMs?: number;
  readonly random?: () => number;
  readonly catalog?: Catalog;
  /** The deployment's daily spending cap (UTC days): once a day's counted cost reaches it, jobs stop. */
  readonly maxDailyCostUsd?: number;
}

/** How long a batch may wait for its tokens, and the signal that ends its calls (the function's deadline). */
export interface BatchDeadline {
  readonly latestStart: number;
  readonly signal: AbortSignal;
}

/** A record's verdict for this invocation; `called` says it called Bedrock for the record (answered or not). */
export type RecordVerdict =
  | {
      readonly kind: 'done';
      readonly status: RecordOutcome['status'] | 'already-done';
      /** What the record added to its job (absent when it was counted before). */
      readonly completion?: RecordCompletion;
      /** The model id called, the region it was called from and how long Bedrock took, for records that reached it. */
      readonly model?: { readonly modelId: string; readonly region: string; readonly latencyMs: number };
      /** How long the record waited in this invocation for its tokens, when that counts as a wait. */
      readonly waitedMs?: number;
      readonly called?: boolean;
    }
  /** Back through the queue after `delaySeconds` (a visibility change): a failed attempt to try again. */
  | {
      readonly kind: 'retry';
      readonly delaySeconds: number;
      readonly failure: Failure | undefined;
      /** The quota pool (`<source region>#<model id>`) the failed call went to, when it reached one. */
      readonly pool?: string;
      readonly called?: boolean;
    }
  /** Sent again with a delay: the quota has no room before the batch's deadline. Not a failure. */
  | {
      readonly kind: 'wait';
      readonly delaySeconds: number;
      /** budget: no tokens in time; daily-quota: Bedrock's day is spent; prefix: another worker writes the cache. */
      readonly cause: 'budget' | 'daily-quota' | 'prefix';
      readonly called?: boolean;
    }
  /** Something unexpected: the message returns after its visibility timeout and, if it keeps failing, to the DLQ. */
  | { readonly kind: 'unhandled'; readonly error: unknown; readonly called?: boolean };

/** What every step of one batch shares. */
export interface Batch {
  readonly ports: WorkerPorts;
  readonly settings: WorkerSettings;
  readonly deadline: BatchDeadline;
  readonly tally: BatchTally;
  /** The spending caps as this batch sees them: a job's own and the deployment's daily one. */
  readonly caps: SpendingCaps;
  readonly size: number;
  /** Names the batch's result set: one object per job, written once its calls have ended. */
  readonly setId: string;
}

/** A record ready to call Bedrock: its body, its budget and what it costs the quota. */
export interface Call {
  readonly message: RecordMessage;
  readonly job: JobRecord;
  readonly subject: StoredResult['subject'];
  readonly invocation: Invocation;
  /** The shared budget it spends from: its quota pool (source region and model id), as Bedrock keeps quotas. */
  readonly budgetKey: string;
  /** Its record named a prefixed model id: it is called through that profile from the home region only. */
  readonly pinned: boolean;
  /** Where the estimator learns and looks up this job's calls to this model. */
  readonly calibrationKey: string;
  /** The input tokens Bedrock will count (cache reads and writes included), as far as is known. */
  readonly inputTokens: number;
  /** What it costs the quota: reading its shared prefix from the cache when it carries one. */
  readonly cost: CallCost;
  /** Set when the call carries its job's shared-prefix breakpoint (one write, then reads): its TTL. */
  readonly prefixTtl?: CacheTtl;
}

export type AcquiredLease = LeaseResult & { kind: 'acquired' };

export interface CallOutcome {
  readonly verdict: RecordVerdict;
  /** What Bedrock charged the quota for the call (the expected charge, when that is unknown). */
  readonly charged: number;
  readonly failure?: Failure;
}

/** Finished records and retries of one batch, per job: one result set each, counted in one transaction. */
export class BatchTally {
  private readonly jobs = new Map<
    string,
    { readonly job: JobRecord; readonly results: Map<number, StoredResult>; retries: JobRetries }
  >();

  finished(job: JobRecord, result: StoredResult): void {
    // A message delivered twice in one batch is one record: counted once.
    const { results } = this.entry(job);
    if (!results.has(result.completion.lineNumber)) results.set(result.completion.lineNumber, result);
  }

  count(job: JobRecord, counters: Partial<JobRetries>): void {
    const entry = this.entry(job);
    entry.retries = addRetries(entry.retries, counters);
  }

  perJob(): FinishedRecords[] {
    return [...this.jobs.values()].map(({ job, results, retries }) => ({
      job,
      results: [...results.values()],
      retries,
    }));
  }

  private entry(job: JobRecord) {
    let entry = this.jobs.get(job.jobId);
    if (entry === undefined) {
      entry = { job, results: new Map(), retries: NO_RETRIES };
      this.jobs.set(job.jobId, entry);
    }
    return entry;
  }
}

/** A call that could not start in this invocation goes back to the queue until its tokens can be there. */
export function waitFor(retryAt: number | undefined, batch: Batch): RecordVerdict {
  const waitMs = Math.max(0, (retryAt ?? batch.deadline.latestStart) - batch.settings.clock.now());
  return { kind: 'wait', cause: 'budget', delaySeconds: waitSeconds(waitMs, batch.settings) };
}

/** A wait as an SQS delay: spread by up to a quarter so records sent back together do not return together. */
export function waitSeconds(waitMs: number, settings: WorkerSettings): number {
  const jitter = 1 + 0.25 * (settings.random ?? Math.random)();
  return Math.min(900, Math.max(1, Math.ceil((waitMs / 1000) * jitter)));
}

export function sumOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0);
}
