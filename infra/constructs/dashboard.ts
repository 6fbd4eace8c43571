import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { METRICS } from '../../shared/contract/metrics.ts';
import type { MonitoringProps } from './monitoring.ts';
import { emfMetric, workerCounts } from './monitoring-metrics.ts';

/** The dashboard people watch: records flowing, the functions, and per model and pool, with the alarms. */
export function pipelineDashboard(
  scope: Construct,
  props: MonitoringProps,
  alarms: readonly cloudwatch.IAlarm[],
): cloudwatch.Dashboard {
  const dashboard = new cloudwatch.Dashboard(scope, 'Dashboard', { defaultInterval: Duration.hours(3) });
  dashboard.addWidgets(...flowWidgets(props));
  dashboard.addWidgets(...functionWidgets(props));
  dashboard.addWidgets(
    ...perModelWidgets(props),
    ...apiWidgets(props),
    new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: [...alarms] }),
  );
  return dashboard;
}

/** The Message Batches API, when the stack serves it: requests, what failed, and how long answers took. */
function apiWidgets({ messageBatchesApi: api }: MonitoringProps): cloudwatch.IWidget[] {
  if (api === undefined) return [];
  const { apiRequests, apiFailures } = METRICS.messageBatches;
  return [
    new cloudwatch.GraphWidget({
      title: 'Message Batches API: requests, 4xx, 5xx, latency (ms)',
      left: [
        emfMetric(apiRequests, 'messageBatches'),
        emfMetric(apiFailures, 'messageBatches'),
        api.metricClientError({ period: Duration.minutes(1), statistic: 'Sum' }),
        api.metricServerError({ period: Duration.minutes(1), statistic: 'Sum' }),
      ],
      right: [api.metricLatency({ period: Duration.minutes(1), statistic: 'p90' })],
    }),
  ];
}

/** Records through the queue, and what waited or was throttled. */
function flowWidgets(props: MonitoringProps): cloudwatch.IWidget[] {
  return [
    new cloudwatch.GraphWidget({
      title: 'Records per minute',
      left: workerCounts('recordsSucceeded', 'recordsFailed', 'recordsRetried', 'recordsCanceled'),
    }),
    new cloudwatch.GraphWidget({
      title: 'Record queue',
      left: [
        props.recordQueue.metricApproximateNumberOfMessagesVisible(),
        props.recordDeadLetters.metricApproximateNumberOfMessagesVisible(),
      ],
      right: [props.recordQueue.metricApproximateAgeOfOldestMessage()],
    }),
    new cloudwatch.GraphWidget({
      title: "Throttles: ours (budget waits) and Bedrock's",
      left: workerCounts('budgetWaits', 'bedrockThrottles'),
    }),
    new cloudwatch.GraphWidget({
      title: 'Work per record: receives, Bedrock calls, records sent back to wait',
      left: workerCounts('recordsReceived', 'bedrockCalls', 'recordsSentBackToWait'),
      right: workerCounts('recordsSucceeded'),
    }),
  ];
}

/** The functions' concurrency, errors and duration, and Bedrock's own view of the calls. */
function functionWidgets(props: MonitoringProps): cloudwatch.IWidget[] {
  const { worker } = props.functions;
  const bedrock = (metricName: string, statistic: string) =>
    props.modelIds.map(
      (modelId) =>
        new cloudwatch.Metric({
          namespace: 'AWS/Bedrock',
          metricName,
          dimensionsMap: { ModelId: modelId },
          statistic,
          period: Duration.minutes(1),
          label: `${metricName} ${modelId}`,
        }),
    );
  return [
    new cloudwatch.GraphWidget({
      title: 'Functions: concurrency, errors, duration',
      left: Object.values(props.functions).map((fn) =>
        fn.metric('ConcurrentExecutions', { statistic: 'Maximum' }),
      ),
      right: Object.values(props.functions).map((fn) => fn.metricErrors()),
    }),
    new cloudwatch.GraphWidget({
      title: 'Worker duration',
      left: [worker.metricDuration({ statistic: 'p50' }), worker.metricDuration({ statistic: 'p99' })],
    }),
    new cloudwatch.GraphWidget({
      title: 'Bedrock (AWS/Bedrock)',
      left: bedrock('Invocations', 'Sum'),
      right: bedrock('InvocationLatency', 'p90'),
    }),
  ];
}

/** Tokens, cost, the prompt cache and latency per model, and the work of each quota pool. */
function perModelWidgets(props: MonitoringProps): cloudwatch.IWidget[] {
  const ofModel = (metricName: string, modelId: string, statistic = 'Sum') =>
    emfMetric(metricName, 'worker', statistic, { model: modelId });
  const perModel = (metricName: string) =>
    props.modelIds.map((modelId) => ofModel(metricName, modelId).with({ label: `${metricName} ${modelId}` }));
  const ofPool = (metricName: string, label: string) =>
    props.pools.map((pool) =>
      emfMetric(metricName, 'worker', 'Sum', { pool }).with({ label: `${label} ${pool}` }),
    );
  return [
    new cloudwatch.GraphWidget({
      title: 'Tokens per model',
      left: [...perModel(METRICS.perModel.inputTokens), ...perModel(METRICS.perModel.outputTokens)],
    }),
    new cloudwatch.GraphWidget({
      title: 'Estimated cost (USD) per model',
      left: perModel(METRICS.perModel.estimatedCostUsd),
    }),
    new cloudwatch.GraphWidget({
      title: 'Prompt cache: hit rate (%) and saving (USD) per model',
      // Metric ids are unique within a graph: each model's pair is numbered.
      left: props.modelIds.map(
        (modelId, index) =>
          new cloudwatch.MathExpression({
            expression: `100 * hits${index} / MAX([hits${index} + misses${index}, 1])`,
            usingMetrics: {
              [`hits${index}`]: ofModel(METRICS.perModel.cacheHitRecords, modelId),
              [`misses${index}`]: ofModel(METRICS.perModel.cacheMissRecords, modelId),
            },
            label: `cache hit rate ${modelId}`,
            period: Duration.minutes(1),
          }),
      ),
      right: perModel(METRICS.perModel.cacheSavingUsd),
    }),
    new cloudwatch.GraphWidget({
      title: 'Records and output tokens per quota pool',
      left: ofPool(METRICS.perPool.records, 'records'),
      right: ofPool(METRICS.perPool.outputTokens, 'output tokens'),
    }),
    new cloudwatch.GraphWidget({
      title: 'Model latency (ms)',
      left: props.modelIds.map((modelId) => ofModel(METRICS.perModel.modelLatency, modelId, 'p90')),
    }),
  ];
}
