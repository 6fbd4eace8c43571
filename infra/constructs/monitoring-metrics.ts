import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { METRICS, METRICS_NAMESPACE, type MetricsService } from '../../shared/contract/metrics.ts';

/** One of the functions' EMF metrics, a minute a point. */
export function emfMetric(
  metricName: string,
  service: MetricsService,
  statistic = 'Sum',
  dimensions: Record<string, string> = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service, ...dimensions },
    statistic,
    period: Duration.minutes(1),
  });
}

/** The worker's counters by name, as a graph lists them. */
export function workerCounts(...names: ReadonlyArray<keyof typeof METRICS.worker>): cloudwatch.Metric[] {
  return names.map((name) => emfMetric(METRICS.worker[name], 'worker'));
}

/** A queue's visible messages, the most in five minutes: what a dead-letter alarm watches. */
export function waitingIn(queue: sqs.IQueue): cloudwatch.Metric {
  return queue.metricApproximateNumberOfMessagesVisible({
    period: Duration.minutes(5),
    statistic: 'Maximum',
  });
}
