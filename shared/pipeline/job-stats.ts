import type { JobRecord, StoredResult } from '../core/model.ts';
import { nanoUsdToUsd } from '../cost/cost.ts';

/** Latency buckets grow by a quarter from 50 ms to ten minutes: percentiles within 25% in constant memory. */
const LATENCY_BUCKETS_MS = (() => {
  const bounds: number[] = [];
  for (let bound = 50; bound < 600_000; bound = Math.ceil(bound * 1.25)) bounds.push(bound);
  return bounds;
})();
const MAX_THROUGHPUT_BUCKETS = 120;
/** Finishing times are kept in at most this many buckets, widened as a job runs long: the state stays small. */
const MAX_STORED_BUCKETS = 1_200;

interface ErrorTally {
  records: number;
  firstLine: number;
}

interface ModelTotals {
  records: number;
  inputTokens: number;
  outputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  costNanoUsd: number;
}

/**
 * What the report draws, gathered while the finalizer streams the results: tokens and cost per model,
 * the latency distribution, records finished over time, and attempts. Memory stays constant per job.
 */
/** The lanes a record can have been answered in. */
type LaneName = 'onDemand' | 'batch';

export class JobStatsCollector {
  private readonly perModel = new Map<string, ModelTotals>();
  private readonly perLane = new Map<LaneName, ModelTotals>();
  /** By quota pool: `<source region>#<model id>`. */
  private readonly perPool = new Map<string, ModelTotals>();
  private readonly latencyCounts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  private latencyCount = 0;
  private latencyMax = 0;
  private finishedBucketSeconds = 1;
  private readonly finished = new Map<number, number>();
  private retriedRecords = 0;
  private maxAttempts = 0;
  /** Errored records by code: how many, and the first line with each. */
  private readonly errors = new Map<string, ErrorTally>();
  /** When the first model call started and the last answer was in (epoch ms): the span of the calls. */
  private firstCallAt: number | undefined;
  private lastAnswerAt: number | undefined;

  constructor(private readonly startedAt: number) {}

  /** The collector as a finalization checkpoint saved it. */
  static restore(startedAt: number, state: unknown): JobStatsCollector {
    const collector = new JobStatsCollector(startedAt);
    const saved = state as JobStatsState;
    for (const [modelId, totals] of saved.perModel) collector.perModel.set(modelId, { ...totals });
    for (const [lane, totals] of saved.perLane ?? []) collector.perLane.set(lane, { ...totals });
    for (const [pool, totals] of saved.perPool ?? []) collector.perPool.set(pool, { ...totals });
    for (const [code, tally] of saved.errors ?? []) collector.errors.set(code, { ...tally });
    saved.latencyCounts.forEach((count, index) => {
      collector.latencyCounts[index] = count;
    });
    collector.latencyCount = saved.latencyCount;
    collector.latencyMax = saved.latencyMax;
    collector.finishedBucketSeconds = saved.finishedBucketSeconds;
    for (const [bucket, count] of saved.finished) collector.finished.set(bucket, count);
    collector.retriedRecords = saved.retriedRecords;
    collector.maxAttempts = saved.maxAttempts;
    collector.firstCallAt = saved.firstCallAt;
    collector.lastAnswerAt = saved.lastAnswerAt;
    return collector;
  }

  /** Everything gathered so far, as plain data of bounded size, for a checkpoint. */
  state(): JobStatsState {
    return {
      perModel: [...this.perModel.entries()].map(([modelId, totals]) => [modelId, { ...totals }]),
      perLane: [...this.perLane.entries()].map(([lane, totals]) => [lane, { ...totals }]),
      perPool: [...this.perPool.entries()].map(([pool, totals]) => [pool, { ...totals }]),
      errors: [...this.errors.entries()].map(([code, tally]) => [code, { ...tally }]),
      latencyCounts: [...this.latencyCounts],
      latencyCount: this.latencyCount,
      latencyMax: this.latencyMax,
      finishedBucketSeconds: this.finishedBucketSeconds,
      finished: [...this.finished.entries()],
      retriedRecords: this.retriedRecords,
      maxAttempts: this.maxAttempts,
      firstCallAt: this.firstCallAt,
      lastAnswerAt: this.lastAnswerAt,
    };
  }

  add(result: StoredResult): void {
    const { timing, completion, outcome } = result;
    if (outcome.status === 'errored') this.addError(outcome.failure.code, completion.lineNumber);
    if (timing === undefined) return;
    const second = Math.max(0, Math.floor((Date.parse(timing.finishedAt) - this.startedAt) / 1000));
    while (Math.floor(second / this.finishedBucketSeconds) >= MAX_STORED_BUCKETS) this.widenFinishedBuckets();
    const bucket = Math.floor(second / this.finishedBucketSeconds);
    this.finished.set(bucket, (this.finished.get(bucket) ?? 0) + 1);
    if (timing.attempts > 1) this.retriedRecords += 1;
    this.maxAttempts = Math.max(this.maxAttempts, timing.attempts);
    if (timing.modelId === undefined) return;
    addTo(this.perModel, timing.modelId, completion);
    addTo(this.perLane, timing.lane === 'batch' ? 'batch' : 'onDemand', completion);
    if (timing.region !== undefined) addTo(this.perPool, `${timing.region}#${timing.modelId}`, completion);
    if (timing.latencyMs === undefined) return;
    this.addLatency(timing.latencyMs);
    const answeredAt = Date.parse(timing.finishedAt);
    this.firstCallAt = Math.min(this.firstCallAt ?? answeredAt, answeredAt - timing.latencyMs);
    this.lastAnswerAt = Math.max(this.lastAnswerAt ?? answeredAt, answeredAt);
  }

  summary(job: Pick<JobRecord, 'retries'>) {
    const lastBucket = Math.max(0, ...this.finished.keys());
    const merge = Math.max(1, Math.ceil((lastBucket + 1) / MAX_THROUGHPUT_BUCKETS));
    const bucketSeconds = merge * this.finishedBucketSeconds;
    const completed = new Array<number>(Math.floor(lastBucket / merge) + 1).fill(0);
    for (const [bucket, count] of this.finished) {
      const index = Math.floor(bucket / merge);
      completed[index] = (completed[index] ?? 0) + count;
    }
    return {
      perModel: [...this.perModel.entries()].map(([modelId, totals]) => ({ modelId, ...reported(totals) })),
      /** Records each quota pool answered (source region and model id), at its price. */
      perPool: [...this.perPool.entries()].map(([pool, totals]) => {
        const [region = '', modelId = ''] = pool.split('#');
        return { region, modelId, ...reported(totals) };
      }),
      /** Records each lane answered (a record that reached no model is in neither), at the lane's price. */
      perLane: Object.fromEntries(
        [...this.perLane.entries()].map(([lane, totals]) => [lane, reported(totals)]),
      ),
      latencyMs: {
        count: this.latencyCount,
        p50: this.percentile(0.5),
        p90: this.percentile(0.9),
        p99: this.percentile(0.99),
        max: this.latencyMax,
        histogram: this.latencyCounts
          .map((count, index) => ({ upToMs: LATENCY_BUCKETS_MS[index] ?? null, count }))
          .filter((bucket) => bucket.count > 0),
      },
      throughput: { bucketSeconds, completed },
      attempts: { retriedRecords: this.retriedRecords, maxAttempts: this.maxAttempts },
      /** Errored records by code, commonest first, with the first line of each (results come in line order). */
      errors: [...this.errors.entries()]
        .map(([code, tally]) => ({ code, ...tally }))
        .sort((a, b) => b.records - a.records || a.firstLine - b.firstLine),
      /** From the first model call's start to the last answer: the job's time less its fixed cost. */
      calls: {
        firstStartedAt: isoOrNull(this.firstCallAt),
        lastAnsweredAt: isoOrNull(this.lastAnswerAt),
        spanSeconds:
          this.firstCallAt === undefined || this.lastAnswerAt === undefined
            ? null
            : Math.round(this.lastAnswerAt - this.firstCallAt) / 1000,
      },
      retries: job.retries,
    };
  }

  /** Records that errored with `code`. */
  erroredWith(code: string): number {
    return this.errors.get(code)?.records ?? 0;
  }

  private addError(code: string, lineNumber: number): void {
    const tally = this.errors.get(code);
    if (tally === undefined) this.errors.set(code, { records: 1, firstLine: lineNumber });
    else tally.records += 1;
  }

  private widenFinishedBuckets(): void {
    const narrow = [...this.finished.entries()];
    this.finished.clear();
    for (const [bucket, count] of narrow) {
      const wide = Math.floor(bucket / 2);
      this.finished.set(wide, (this.finished.get(wide) ?? 0) + count);
    }
    this.finishedBucketSeconds *= 2;
  }

  private addLatency(latencyMs: number): void {
    const index = LATENCY_BUCKETS_MS.findIndex((bound) => latencyMs <= bound);
    const bucket = index === -1 ? LATENCY_BUCKETS_MS.length : index;
    this.latencyCounts[bucket] = (this.latencyCounts[bucket] ?? 0) + 1;
    this.latencyCount += 1;
    this.latencyMax = Math.max(this.latencyMax, latencyMs);
  }

  /** The upper bound of the bucket holding the q-th latency (the max for the open last bucket). */
  private percentile(q: number): number | null {
    if (this.latencyCount === 0) return null;
    const rank = Math.ceil(q * this.latencyCount);
    let seen = 0;
    for (const [index, count] of this.latencyCounts.entries()) {
      seen += count;
      if (seen >= rank) return Math.min(LATENCY_BUCKETS_MS[index] ?? this.latencyMax, this.latencyMax);
    }
    return this.latencyMax;
  }
}

function addTo<Key>(
  totalsByKey: Map<Key, ModelTotals>,
  key: Key,
  completion: StoredResult['completion'],
): void {
  const totals = totalsByKey.get(key) ?? {
    records: 0,
    inputTokens: 0,
    outputTokens: 0,
    cacheWriteTokens: 0,
    cacheReadTokens: 0,
    costNanoUsd: 0,
  };
  totals.records += 1;
  totals.inputTokens += completion.inputTokens;
  totals.outputTokens += completion.outputTokens;
  totals.cacheWriteTokens += completion.cacheCreationInputTokens;
  totals.cacheReadTokens += completion.cacheReadInputTokens;
  totals.costNanoUsd += completion.costNanoUsd;
  totalsByKey.set(key, totals);
}

function isoOrNull(epochMs: number | undefined): string | null {
  return epochMs === undefined ? null : new Date(epochMs).toISOString();
}

function reported(totals: ModelTotals) {
  return {
    records: totals.records,
    inputTokens: totals.inputTokens,
    outputTokens: totals.outputTokens,
    cacheWriteTokens: totals.cacheWriteTokens,
    cacheReadTokens: totals.cacheReadTokens,
    estimatedCostUsd: nanoUsdToUsd(totals.costNanoUsd),
  };
}

export type JobStats = ReturnType<JobStatsCollector['summary']>;

/** A collector's state, as a checkpoint keeps it. */
export interface JobStatsState {
  readonly perModel: ReadonlyArray<readonly [string, ModelTotals]>;
  /** Absent in checkpoints saved before lanes were counted. */
  readonly perLane?: ReadonlyArray<readonly [LaneName, ModelTotals]>;
  /** Absent in checkpoints saved before pools were counted. */
  readonly perPool?: ReadonlyArray<readonly [string, ModelTotals]>;
  /** Absent in checkpoints saved before errors were counted by code. */
  readonly errors?: ReadonlyArray<readonly [string, ErrorTally]>;
  readonly latencyCounts: readonly number[];
  readonly latencyCount: number;
  readonly latencyMax: number;
  readonly finishedBucketSeconds: number;
  readonly finished: ReadonlyArray<readonly [number, number]>;
  readonly retriedRecords: number;
  readonly maxAttempts: number;
  /** Absent in checkpoints saved before the span of the calls was kept. */
  readonly firstCallAt?: number | undefined;
  readonly lastAnswerAt?: number | undefined;
}
