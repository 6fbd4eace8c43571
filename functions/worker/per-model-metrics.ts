import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RecordVerdict } from '../../shared/pipeline/worker-batch.ts';
import { METRICS, METRICS_NAMESPACE } from '../metrics.ts';

type Done = RecordVerdict & { kind: 'done' };

/**
 * Tokens, cost and latency per model for a batch's answered records: the one dimension worth its cost (a job
 * is a property of the logs, not a dimension).
 */
export function publishPerModel(verdicts: readonly RecordVerdict[]): void {
  const byModel = new Map<string, Done[]>();
  for (const verdict of verdicts) {
    if (verdict.kind !== 'done' || verdict.model === undefined || verdict.completion === undefined) continue;
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
        | 'costNanoUsd',
    ) => done.reduce((sum, verdict) => sum + (verdict.completion?.[field] ?? 0), 0);
    const names = METRICS.perModel;
    metrics.addMetric(names.inputTokens, MetricUnit.Count, total('inputTokens'));
    metrics.addMetric(names.outputTokens, MetricUnit.Count, total('outputTokens'));
    metrics.addMetric(names.cacheWriteInputTokens, MetricUnit.Count, total('cacheCreationInputTokens'));
    metrics.addMetric(names.cacheReadInputTokens, MetricUnit.Count, total('cacheReadInputTokens'));
    metrics.addMetric(names.estimatedCostUsd, MetricUnit.NoUnit, total('costNanoUsd') / 1e9);
    for (const verdict of done)
      metrics.addMetric(names.modelLatency, MetricUnit.Milliseconds, verdict.model?.latencyMs ?? 0);
    metrics.publishStoredMetrics();
  }
}
