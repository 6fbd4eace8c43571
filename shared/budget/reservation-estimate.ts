import type { TokenUsage } from '../cost/cost.ts';
import type { TokenEstimate } from '../request/token-estimate.ts';

export interface EstimatorOptions {
  /** Answered calls remembered per job and model. */
  readonly window: number;
  /** The share of answers whose output the reservation covers. */
  readonly outputPercentile: number;
  /** Jobs and models remembered at once; the oldest is forgotten first. */
  readonly maxKeys: number;
}

const DEFAULT_OPTIONS: EstimatorOptions = { window: 200, outputPercentile: 0.9, maxKeys: 64 };

/**
 * How many tokens the budget takes for one call.
 *
 * Bedrock reserves input (cache writes and reads included) plus max_tokens when a call starts, and charges
 * input, cache writes and output x burndown when it ends. The budget settles a whole batch at once, so a
 * finished call's charge reaches the budget only when the batch's last call ends; taking the larger of
 * Bedrock's reservation and the charge to expect keeps the budget at or below Bedrock's own bucket meanwhile.
 *
 * Inputs are measured without a tokenizer (an upper estimate of one token per 3 bytes). Once calls of a job
 * are answered, the estimate is scaled by the largest ratio of counted to estimated input seen, and the
 * output to expect is a high percentile of the answers seen; before that, the reservation is Bedrock's own
 * with the upper estimate. A caller that counted the input exactly (CountTokens) passes that count.
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

  /** What to take from the budget for a call of `inputTokens` and `maxTokens`. */
  tokensToReserve(key: string, inputTokens: number, maxTokens: number): number {
    const output = Math.min(
      maxTokens,
      this.samples.get(key)?.outputPercentile(this.options.outputPercentile) ?? 0,
    );
    return inputTokens + Math.max(maxTokens, output * this.outputBurndown);
  }

  /** Learns from an answered call what Bedrock counted against what was estimated. */
  learn(key: string, estimate: TokenEstimate, usage: TokenUsage): void {
    let samples = this.samples.get(key);
    if (samples === undefined) {
      samples = new Samples(this.options.window);
      this.samples.set(key, samples);
      const oldest = this.samples.keys().next().value;
      if (this.samples.size > this.options.maxKeys && oldest !== undefined) this.samples.delete(oldest);
    }
    const counted =
      usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
    samples.add(estimate.upper > 0 ? counted / estimate.upper : 1, usage.output_tokens);
  }
}

/** The last `window` answers: input ratios and output lengths. */
class Samples {
  private readonly inputRatios: number[] = [];
  private readonly outputs: number[] = [];
  private sortedOutputs: number[] | undefined;

  constructor(private readonly window: number) {}

  add(inputRatio: number, output: number): void {
    this.inputRatios.push(inputRatio);
    this.outputs.push(output);
    if (this.outputs.length > this.window) {
      this.inputRatios.shift();
      this.outputs.shift();
    }
    this.sortedOutputs = undefined;
  }

  largestInputRatio(): number {
    return Math.max(...this.inputRatios);
  }

  outputPercentile(share: number): number {
    this.sortedOutputs ??= [...this.outputs].sort((a, b) => a - b);
    return (
      this.sortedOutputs[
        Math.min(this.sortedOutputs.length - 1, Math.floor(share * this.sortedOutputs.length))
      ] ?? 0
    );
  }
}
