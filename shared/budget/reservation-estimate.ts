import type { TokenUsage } from '../cost/cost.ts';
import type { TokenEstimate } from '../request/token-estimate.ts';

export interface EstimatorOptions {
  /** Answered calls remembered per job and model. */
  readonly window: number;
  /** Jobs and models remembered at once; the oldest is forgotten first. */
  readonly maxKeys: number;
}

const DEFAULT_OPTIONS: EstimatorOptions = { window: 200, maxKeys: 64 };

/** What one call costs the quota, as far as can be told before it is made. */
export interface CallCost {
  /** What Bedrock takes when the call starts: input (cache included) plus max_tokens. */
  readonly reserved: number;
  /** What Bedrock is expected to charge when it ends: input plus output x burndown, less cache reads. */
  readonly charge: number;
  /** The most it has been charged for such calls: the longest answer seen, or max_tokens before any. */
  readonly ceiling: number;
}

/**
 * What calls will cost the quota, learnt from the calls of the same job and model answered so far.
 *
 * Inputs are measured without a tokenizer (an upper estimate of one token per 3 bytes); once calls are
 * answered, the estimate is scaled by the largest ratio of counted to estimated input seen. The output to
 * expect is the mean of the answers seen plus one standard error of a batch's mean: a batch as a whole is
 * seldom charged more than it took (and tops its share up when it is), and seldom holds much it will not
 * use. Before any answer, a call is expected to cost the most Bedrock may charge for it (input plus max_tokens
 * x burndown): expected at less, a job's first calls, started at once by every worker, would leave Bedrock in
 * a debt the shared budget learns of only as their batches settle, and calls granted meanwhile would meet it
 * as throttles. What they did not use is given back as their answers come in. A caller that counted the
 * input exactly (CountTokens) passes that count.
 */
export class ReservationEstimator {
  private readonly samples = new Map<string, Samples>();
  private readonly options: EstimatorOptions;

  constructor(
    private readonly outputBurndown: number,
    options: Partial<EstimatorOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  /** The input tokens Bedrock will count: `counted` when given, else the estimate calibrated for `key`. */
  inputTokens(key: string, estimate: TokenEstimate, counted?: number): number {
    if (counted !== undefined) return counted;
    const ratio = this.samples.get(key)?.largestInputRatio() ?? 1;
    return Math.max(estimate.lower, Math.ceil(estimate.upper * ratio));
  }

  /**
   * What a call of `inputTokens` and `maxTokens`, made in a batch of `batchSize`, costs the quota. Bedrock
   * releases cache reads when it settles: a call that `readsCache` (it carries a prefix already written) is
   * expected to read what the fewest-reading call of its kind read, none before one has.
   */
  costOf(
    key: string,
    inputTokens: number,
    maxTokens: number,
    batchSize: number,
    readsCache = false,
  ): CallCost {
    const reserved = inputTokens + maxTokens;
    const samples = this.samples.get(key);
    const released = readsCache ? Math.min(inputTokens, samples?.fewestCacheReads() ?? 0) : 0;
    if (samples === undefined) {
      const most = inputTokens + maxTokens * this.outputBurndown;
      return { reserved, charge: most, ceiling: most };
    }
    const chargeOf = (output: number) =>
      inputTokens - released + Math.ceil(Math.min(maxTokens, output) * this.outputBurndown);
    return {
      reserved,
      charge: chargeOf(samples.outputForBatch(batchSize)),
      ceiling: chargeOf(samples.longestOutput()),
    };
  }

  /**
   * How many calls must run at once to spend `tokensPerMinute` of calls charged `charge` each, by the
   * latency seen (Little's law); `batchSize` until an answer has shown the latency.
   */
  callsInFlight(key: string, tokensPerMinute: number, charge: number, batchSize: number): number {
    const latencyMs = this.samples.get(key)?.meanLatencyMs();
    if (latencyMs === undefined) return batchSize;
    const callsPerMs = tokensPerMinute / 60_000 / Math.max(1, charge);
    // An unlimited quota (or answers too quick to time) sets no bound but the batch.
    const needed = Math.ceil(callsPerMs * latencyMs);
    return Number.isFinite(needed) ? Math.min(batchSize, Math.max(1, needed)) : batchSize;
  }

  /** Learns from an answered call what Bedrock counted against what was estimated, and how long it took. */
  learn(key: string, estimate: TokenEstimate, usage: TokenUsage, latencyMs: number): void {
    let samples = this.samples.get(key);
    if (samples === undefined) {
      samples = new Samples(this.options.window);
      this.samples.set(key, samples);
      const oldest = this.samples.keys().next().value;
      if (this.samples.size > this.options.maxKeys && oldest !== undefined) this.samples.delete(oldest);
    }
    const counted =
      usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
    samples.add({
      inputRatio: estimate.upper > 0 ? counted / estimate.upper : 1,
      output: usage.output_tokens,
      cacheRead: usage.cache_read_input_tokens ?? 0,
      latencyMs,
    });
  }
}

interface Sample {
  readonly inputRatio: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly latencyMs: number;
}

/** The last `window` answers. */
class Samples {
  private readonly recent: Sample[] = [];

  constructor(private readonly window: number) {}

  add(sample: Sample): void {
    this.recent.push(sample);
    if (this.recent.length > this.window) this.recent.shift();
  }

  largestInputRatio(): number {
    return Math.max(...this.recent.map((sample) => sample.inputRatio));
  }

  /** The mean output plus one standard error of the mean of `batchSize` answers. */
  outputForBatch(batchSize: number): number {
    const outputs = this.recent.map((sample) => sample.output);
    const mean = outputs.reduce((sum, output) => sum + output, 0) / outputs.length;
    const variance = outputs.reduce((sum, output) => sum + (output - mean) ** 2, 0) / outputs.length;
    return mean + Math.sqrt(variance) / Math.sqrt(Math.max(1, batchSize));
  }

  /** The fewest tokens a call that read the cache read; undefined when none has. */
  fewestCacheReads(): number | undefined {
    const reads = this.recent.map((sample) => sample.cacheRead).filter((read) => read > 0);
    return reads.length === 0 ? undefined : Math.min(...reads);
  }

  longestOutput(): number {
    return Math.max(...this.recent.map((sample) => sample.output));
  }

  meanLatencyMs(): number {
    return this.recent.reduce((sum, sample) => sum + sample.latencyMs, 0) / this.recent.length;
  }
}
