/**
 * What a token quota implies for the pipeline's shape: how many workers keep it busy, and how long a queue
 * of records takes to drain through it. The stack sizes its event source and its alarms from these.
 */

/** A record as the quota sees it, for sizing: what it is charged and how long Bedrock takes to answer it. */
export interface TypicalRecord {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly latencySeconds: number;
}

export interface QuotaShape {
  readonly tokensPerMinute: number;
  /** Quota tokens one output token costs. */
  readonly outputBurndown: number;
  readonly record: TypicalRecord;
}

/** Quota tokens Bedrock charges a typical record: input plus output x burndown. */
export function chargePerRecord({ outputBurndown, record }: QuotaShape): number {
  return record.inputTokens + record.outputTokens * outputBurndown;
}

/** Records a second the quota sustains. */
export function recordsPerSecond(shape: QuotaShape): number {
  return shape.tokensPerMinute / 60 / chargePerRecord(shape);
}

/**
 * Worker invocations at once that keep the quota busy: records in flight at Bedrock (records a second x
 * latency, Little's law) with `headroom` for answers slower than typical, plus one batch waiting its turn
 * in the budget per invocation, in batches; 2 to 1,000 as the SQS event source allows. More would only
 * wait: the shared budget, not this cap, keeps Bedrock from throttling.
 */
export function workerConcurrencyFor(shape: QuotaShape, batchSize: number, headroom = 2): number {
  const inFlight = recordsPerSecond(shape) * shape.record.latencySeconds * headroom;
  return Math.min(1_000, Math.max(2, Math.ceil(inFlight / batchSize) + 1));
}

/** Seconds the quota needs to run `records` typical records. */
export function drainSeconds(shape: QuotaShape, records: number): number {
  return records / recordsPerSecond(shape);
}

/**
 * The least time a quota of `tokensPerMinute` lets `tokens` be charged: the first minute's tokens are there
 * at once (the bucket starts full), the rest come at the quota's rate.
 */
export function quotaSeconds(tokens: number, tokensPerMinute: number): number {
  return (Math.max(0, tokens - tokensPerMinute) / tokensPerMinute) * 60;
}
