import { freshForMs } from '../caching/cache-ttl.ts';
import type { Batch, Call, RecordVerdict } from './batch.ts';

/**
 * The arrange stage: how the batch's calls wait for one another. A shared prefix is written by one call
 * before the calls that read it start; a batch that mixes jobs or models waits less for its tokens.
 */
export interface Arranged {
  /** The batch the calls run in (see MIXED_BATCH_WAIT_MS). */
  readonly batch: Batch;
  /** Calls that write their job's shared prefix to the cache: they go first. */
  readonly writers: readonly Call[];
  /** Calls free to start as their tokens arrive. */
  readonly free: readonly Call[];
  /** Calls sent back while another worker writes the prefix they would read. */
  readonly waiting: ReadonlyArray<readonly [Call, RecordVerdict]>;
}

export async function arrange(calls: readonly Call[], batch: Batch): Promise<Arranged> {
  const calling = sharedPatiently(calls, batch);
  const { writers, waiting, free } = await arrangePrefixWrites(calls, calling);
  return {
    batch: calling,
    writers,
    free,
    waiting: waiting.map((call) => [
      call,
      { kind: 'wait', cause: 'prefix', delaySeconds: PREFIX_WAIT_SECONDS },
    ]),
  };
}

/**
 * How long a call of a batch that mixes models or jobs may wait here for its tokens. The batch's results are
 * counted together at its end: a record waiting minutes for its own model's tokens (a long document under a
 * small quota) would hold back the results of the others, which have tokens of their own.
 */
const MIXED_BATCH_WAIT_MS = 15_000;

/**
 * The batch its calls run in: as it is when they share one model of one job; when they mix models or jobs,
 * with a latest start `MIXED_BATCH_WAIT_MS` away, so calls whose tokens come later go back to the queue to
 * wait for them (without spending an attempt) and the others finish now.
 */
function sharedPatiently(calls: readonly Call[], batch: Batch): Batch {
  const groups = new Set(
    calls.map((call) => `${call.job.jobId}#${call.invocation.resolved.model.bedrockId}`),
  );
  if (groups.size <= 1) return batch;
  const latestStart = Math.min(batch.deadline.latestStart, batch.settings.clock.now() + MIXED_BATCH_WAIT_MS);
  return { ...batch, deadline: { ...batch.deadline, latestStart } };
}

/** How long a record waits while another worker writes the prefix it would read. */
const PREFIX_WAIT_SECONDS = 3;
/** A writer that has not written in this long has stopped: another may take the write over. */
const DEFAULT_PREFIX_CLAIM_MS = 60_000;

/**
 * The calls that carry a shared prefix, per job and model: while no fresh write stands, one of them writes
 * it first (the ledger says which worker), the others of this batch follow it, and those of other workers
 * wait a few seconds for it. Every other call is free to start.
 */
async function arrangePrefixWrites(
  calls: readonly Call[],
  batch: Batch,
): Promise<{ writers: Call[]; waiting: Call[]; free: Call[] }> {
  const { ports, settings } = batch;
  const now = settings.clock.now();
  const writers: Call[] = [];
  const waiting: Call[] = [];
  const free: Call[] = [];
  const groups = new Map<string, Call[]>();
  for (const call of calls) {
    const writtenAt = call.job.prefixWrites[call.invocation.modelId]?.writtenAt;
    if (
      call.prefixTtl === undefined ||
      (writtenAt !== undefined && writtenAt >= now - freshForMs(call.prefixTtl))
    )
      free.push(call);
    else {
      const key = `${call.job.jobId}#${call.invocation.modelId}`;
      groups.set(key, [...(groups.get(key) ?? []), call]);
    }
  }
  for (const [first, ...rest] of groups.values()) {
    if (first === undefined) continue;
    const claim = await ports.ledger.claimPrefixWrite(first.job.jobId, first.invocation.modelId, {
      owner: settings.owner,
      until: now + (settings.prefixClaimMs ?? DEFAULT_PREFIX_CLAIM_MS),
      freshAfter: now - freshForMs(first.prefixTtl ?? '5m'),
      now,
    });
    if (claim === 'busy') waiting.push(first, ...rest);
    else if (claim === 'written') free.push(first, ...rest);
    else {
      writers.push(writing(first, batch));
      free.push(...rest);
    }
  }
  return { writers, waiting, free };
}

/** The call that writes its prefix to the cache: charged for all of its input, as it reads none of it. */
function writing(call: Call, batch: Batch): Call {
  const { reservations } = batch.settings;
  const { calibrationKey, inputTokens, invocation } = call;
  return {
    ...call,
    cost: reservations.costOf(calibrationKey, inputTokens, invocation.maxTokens, batch.size),
  };
}
