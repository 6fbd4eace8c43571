import type { CallCost, ReservationEstimator } from '../budget/reservation-estimate.ts';
import type { CacheTtl } from '../caching/cache-ttl.ts';
import type { Catalog } from '../catalog/catalog.ts';
import type { ServiceTier } from '../contract/service-tiers.ts';
import type { Clock } from '../core/clock.ts';
import type { DailySpend, Jobs, PrefixCache, RecordLedger, TierRefusals } from '../core/ledger.ts';
import type { JobRecord, LeaseResult, StoredResult } from '../core/model.ts';
import type { ModelInvoker, TokenBudget } from '../core/ports.ts';
import type { Failure, RetryPolicy } from '../failures.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import type { RecordOutcome } from '../output/result-records.ts';
import type { CompletionPorts } from '../pipeline/complete.ts';
import type { SpendingCaps } from '../pipeline/spending-caps.ts';
import type { Invocation } from '../request/build-request.ts';

/**
 * What a worker batch is made of and gives back: its ports and settings, its calls, their verdicts. A batch
 * goes through four stages, data flowing one way: prepare (each message to a verdict, or to a call), arrange
 * (who writes a shared prefix, who waits for it), call (the budget, the lease, Bedrock), count (the verdicts
 * folded into one result set and one ledger transaction per job).
 */

export interface WorkerPorts extends CompletionPorts {
  readonly ledger: CompletionPorts['ledger'] &
    Pick<Jobs, 'cancelJob'> &
    Pick<RecordLedger, 'doneRecords' | 'leaseRecord' | 'releaseRecord'> &
    Pick<PrefixCache, 'claimPrefixWrite' | 'markPrefixWritten'> &
    TierRefusals &
    DailySpend;
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

/** What every verdict may say of the record's time in this invocation: what its job's counters add up from. */
interface VerdictBase {
  /** It called Bedrock for the record (answered or not). */
  readonly called?: boolean;
  /** How long its call waited in this invocation for its tokens, when that counts as a wait. */
  readonly waitedMs?: number;
  /**
   * Its calls Bedrock throttled in this invocation before the one this verdict tells of, each made again
   * here, and the quota pool (`<source region>#<model id>`) that throttled them.
   */
  readonly throttledHere?: { readonly calls: number; readonly pool: string };
}

/** A record's verdict for this invocation. */
export type RecordVerdict = VerdictBase &
  (
    | {
        readonly kind: 'done';
        readonly status: RecordOutcome['status'] | 'already-done';
        /** The result to store and count (absent when it was counted before). */
        readonly result?: StoredResult;
        /** The model id called, the region it was called from and how long Bedrock took, for records that reached it. */
        readonly model?: { readonly modelId: string; readonly region: string; readonly latencyMs: number };
      }
    /** Back through the queue after `delaySeconds` (a visibility change): a failed attempt to try again. */
    | {
        readonly kind: 'retry';
        readonly delaySeconds: number;
        readonly failure: Failure | undefined;
        /** The quota pool (`<source region>#<model id>`) the failed call went to, when it reached one. */
        readonly pool?: string;
      }
    /** Sent again with a delay: the quota has no room before the batch's deadline. Not a failure. */
    | {
        readonly kind: 'wait';
        readonly delaySeconds: number;
        /** budget: no tokens in time; daily-quota: Bedrock's day is spent; prefix: another worker writes the cache. */
        readonly cause: 'budget' | 'daily-quota' | 'prefix';
      }
    /** Something unexpected: the message returns after its visibility timeout and, if it keeps failing, to the DLQ. */
    | { readonly kind: 'unhandled'; readonly error: unknown }
  );

/** A message with its job (when the ledger knows it) and its verdict: what the count stage folds. */
export interface Decided {
  readonly message: RecordMessage;
  readonly job: JobRecord | undefined;
  readonly verdict: RecordVerdict;
}

/** What every stage of one batch shares: read-only, so what a stage decides flows on in its return value. */
export interface Batch {
  readonly ports: WorkerPorts;
  readonly settings: WorkerSettings;
  readonly deadline: BatchDeadline;
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
  /** The service tier to ask for: the job's, or default once Bedrock has refused the job's for this model. */
  readonly tier: ServiceTier;
}

export type AcquiredLease = LeaseResult & { kind: 'acquired' };

export interface CallOutcome {
  readonly verdict: RecordVerdict;
  /** What Bedrock charged the quota for the call (the expected charge, when that is unknown). */
  readonly charged: number;
  readonly failure?: Failure;
}
