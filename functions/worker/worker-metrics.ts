import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS, METRICS_NAMESPACE } from '../../shared/contract/metrics.ts';
import { cacheOutcomeOf } from '../../shared/output/manifest.ts';
import { poolName } from '../../shared/quotas/pools.ts';
import type { RecordVerdict } from '../../shared/worker/batch.ts';

type Done = RecordVerdict & { kind: 'done' };

/**
 * Tokens, cost and latency per model for a batch's answered records: the one dimension worth its cost (a job
 * is a property of the logs, not a dimension).
 */
export function publishPerModel(verdicts: readonly RecordVerdict[]): void {
  const byModel = new Map<string, Done[]>();
  for (const verdict of verdicts) {
    if (verdict.kind !== 'done' || verdict.model === undefined || verdict.result === undefined) continue;
    byModel.set(verdict.model.modelId, [...(byModel.get(verdict.model.modelId) ?? []), verdict]);
  }
  for (const [modelId, done] of byModel) {
    const metrics = new Metrics({
      namespace: METRICS_NAMESPACE,
      serviceName: 'worker',
      defaultDimensions: { model: modelId },
    });
    const total = (
      field:
        | 'inputTokens'
        | 'outputTokens'
        | 'cacheCreationInputTokens'
        | 'cacheReadInputTokens'
        | 'costNanoUsd'
        | 'uncachedCostNanoUsd',
    ) => done.reduce((sum, verdict) => sum + (verdict.result?.completion[field] ?? 0), 0);
    const records = (outcome: 'hit' | 'miss') =>
      done.filter(
        (verdict) => verdict.result !== undefined && cacheOutcomeOf(verdict.result.completion) === outcome,
      ).length;
    const names = METRICS.perModel;
    metrics.addMetric(names.inputTokens, MetricUnit.Count, total('inputTokens'));
    metrics.addMetric(names.outputTokens, MetricUnit.Count, total('outputTokens'));
    metrics.addMetric(names.cacheWriteInputTokens, MetricUnit.Count, total('cacheCreationInputTokens'));
    metrics.addMetric(names.cacheReadInputTokens, MetricUnit.Count, total('cacheReadInputTokens'));
    metrics.addMetric(names.cacheHitRecords, MetricUnit.Count, records('hit'));
    metrics.addMetric(names.cacheMissRecords, MetricUnit.Count, records('miss'));
    metrics.addMetric(
      names.cacheSavingUsd,
      MetricUnit.NoUnit,
      (total('uncachedCostNanoUsd') - total('costNanoUsd')) / 1e9,
    );
    metrics.addMetric(names.estimatedCostUsd, MetricUnit.NoUnit, total('costNanoUsd') / 1e9);
    for (const verdict of done)
      metrics.addMetric(names.modelLatency, MetricUnit.Milliseconds, verdict.model?.latencyMs ?? 0);
    metrics.publishStoredMetrics();
  }
}

/** Records and tokens per quota pool for a batch's answered records, and each pool's throttled calls. */
export function publishPerPool(verdicts: readonly RecordVerdict[]): void {
  const byPool = new Map<string, Done[]>();
  const throttles = new Map<string, number>();
  const addThrottles = (pool: string, calls: number) =>
    throttles.set(pool, (throttles.get(pool) ?? 0) + calls);
  for (const verdict of verdicts) {
    if (verdict.kind === 'retry' && verdict.pool !== undefined && verdict.failure?.throttle === true)
      addThrottles(verdict.pool, 1);
    if (verdict.throttledHere !== undefined)
      addThrottles(verdict.throttledHere.pool, verdict.throttledHere.calls);
    if (verdict.kind !== 'done' || verdict.model === undefined || verdict.result === undefined) continue;
    const pool = poolName(verdict.model);
    byPool.set(pool, [...(byPool.get(pool) ?? []), verdict]);
  }
  const names = METRICS.perPool;
  for (const pool of new Set([...byPool.keys(), ...throttles.keys()])) {
    const done = byPool.get(pool) ?? [];
    const metrics = new Metrics({
      namespace: METRICS_NAMESPACE,
      serviceName: 'worker',
      defaultDimensions: { pool },
    });
    const total = (field: 'inputTokens' | 'outputTokens') =>
      done.reduce((sum, verdict) => sum + (verdict.result?.completion[field] ?? 0), 0);
    metrics.addMetric(names.records, MetricUnit.Count, done.length);
    metrics.addMetric(names.inputTokens, MetricUnit.Count, total('inputTokens'));
    metrics.addMetric(names.outputTokens, MetricUnit.Count, total('outputTokens'));
    metrics.addMetric(names.throttles, MetricUnit.Count, throttles.get(pool) ?? 0);
    metrics.publishStoredMetrics();
  }
}

/** What one record's verdict adds to the invocation's metrics. */
export function countVerdict(metrics: Metrics, verdict: RecordVerdict): void {
  const names = METRICS.worker;
  if (verdict.called === true) metrics.addMetric(names.bedrockCalls, MetricUnit.Count, 1);
  // Calls throttled and made again in the invocation: each a call, a throttle and a retry of its own.
  const throttledHere = verdict.throttledHere?.calls ?? 0;
  if (throttledHere > 0) {
    metrics.addMetric(names.bedrockCalls, MetricUnit.Count, throttledHere);
    metrics.addMetric(names.bedrockThrottles, MetricUnit.Count, throttledHere);
    metrics.addMetric(names.recordsRetried, MetricUnit.Count, throttledHere);
  }
  switch (verdict.kind) {
    case 'wait':
      metrics.addMetric(names.recordsSentBackToWait, MetricUnit.Count, 1);
      return;
    case 'retry':
      metrics.addMetric(names.recordsRetried, MetricUnit.Count, 1);
      if (verdict.failure?.throttle === true) metrics.addMetric(names.bedrockThrottles, MetricUnit.Count, 1);
      return;
    case 'unhandled':
      return;
    case 'done': {
      if (verdict.waitedMs !== undefined) metrics.addMetric(names.budgetWaits, MetricUnit.Count, 1);
      const name = {
        succeeded: names.recordsSucceeded,
        errored: names.recordsFailed,
        canceled: names.recordsCanceled,
        expired: names.recordsCanceled,
        'already-done': names.duplicateDeliveries,
      }[verdict.status];
      metrics.addMetric(name, MetricUnit.Count, 1);
    }
  }
}
