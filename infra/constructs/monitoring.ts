import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS, METRICS_NAMESPACE, type MetricsService } from '../../functions/metrics.ts';

export interface MonitoringProps {
  readonly recordQueue: sqs.IQueue;
  readonly recordDeadLetters: sqs.IQueue;
  /** Finalizations that failed every retry. */
  readonly finalizeDeadLetters: sqs.IQueue;
  /** Upload and continuation events the enqueue function failed on every retry. */
  readonly enqueueFailures: sqs.IQueue;
  readonly functions: Readonly<
    Record<'enqueue' | 'worker' | 'finalizer' | 'sweeper' | 'batch', lambda.IFunction>
  >;
  /** The model ids the pipeline calls, for the per-model and AWS/Bedrock widgets. */
  readonly modelIds: readonly string[];
  /** The quota pools files may spread over (`<source region>#<model id>`), for the per-pool widget. */
  readonly pools: readonly string[];
  /** Oldest record older than this means the pipeline is not keeping up (or stuck). */
  readonly oldestMessageAlarmAge: Duration;
  readonly alarmEmail?: string | undefined;
  readonly alarmTopicArn?: string | undefined;
}

/** The dashboard people watch and the alarms that call them, each saying what to do. */
export class Monitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const topic = this.alarmTopic(props);
    const emf = (
      metricName: string,
      service: MetricsService,
      statistic = 'Sum',
      extra: Record<string, string> = {},
    ) =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service, ...extra },
        statistic,
        period: Duration.minutes(1),
      });
    /** The worker's counters by name, as a graph lists them. */
    const workerCounts = (...names: ReadonlyArray<keyof typeof METRICS.worker>) =>
      names.map((name) => emf(METRICS.worker[name], 'worker'));
    const worker = props.functions.worker;

    const alarm = (
      name: string,
      metric: cloudwatch.Metric | cloudwatch.MathExpression,
      threshold: number,
      evaluationPeriods: number,
      description: string,
    ) => {
      const created = metric.createAlarm(this, name, {
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (topic !== undefined) created.addAlarmAction(new actions.SnsAction(topic));
      this.alarms.push(created);
    };
    alarm(
      'DeadLetters',
      props.recordDeadLetters.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      1,
      1,
      'Record messages reached the DLQ: the worker could not handle them at all (not a Bedrock error, which becomes an error record). Read the worker logs for "record could not be handled", fix the cause, then run "bedrock-batch redrive".',
    );
    const waiting = (queue: sqs.IQueue) =>
      queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' });
    alarm(
      'FinalizeDeadLetters',
      waiting(props.finalizeDeadLetters),
      1,
      1,
      'A job failed to finalize on every try; its message is in the finalize DLQ. Read the finalizer logs for its job id and fix the cause: the sweeper starts the finalization again while the job stays "finalizing".',
    );
    alarm(
      'EnqueueFailures',
      waiting(props.enqueueFailures),
      1,
      1,
      'An upload (or the rest of a large file) could not be read on any retry; the event and its error are in the enqueue-failures queue. Read the enqueue logs for the key: a job that was created is read on by the sweeper once the cause is fixed; an upload that got no job needs uploading again.',
    );
    alarm(
      'OldestRecord',
      props.recordQueue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      props.oldestMessageAlarmAge.toSeconds(),
      3,
      'Records have waited long in the queue: the token budget or Bedrock quota is too small for the load, or workers are failing. Check BudgetWaits and BedrockThrottles on the dashboard; raise TOKENS_PER_MINUTE with the quota, or ask AWS for more quota.',
    );
    alarm(
      'WorkerErrors',
      new cloudwatch.MathExpression({
        expression: '100 * errors / MAX([invocations, 1])',
        usingMetrics: {
          errors: worker.metricErrors({ statistic: 'Sum' }),
          invocations: worker.metricInvocations({ statistic: 'Sum' }),
        },
        period: Duration.minutes(5),
        label: 'worker error %',
      }),
      5,
      3,
      'More than 5% of worker invocations failed as a whole (timeouts, crashes), not single records. Read the worker logs; a timeout means the batch size or model latency needs a longer worker timeout.',
    );
    alarm(
      'SustainedThrottling',
      emf(METRICS.worker.bedrockThrottles, 'worker').with({ period: Duration.minutes(5) }),
      10,
      3,
      'Bedrock has throttled the pipeline for 15 minutes although it stays within its own budget: another application shares the quota. The budget adapts, but jobs will be slow; raise the Bedrock quota or lower TOKENS_PER_MINUTE.',
    );
    // Over several pools, which one: the budget moves work to the others, so one starved pool stays quiet in
    // the sum while it slows every file that prefers it.
    if (props.pools.length > 1)
      props.pools.forEach((pool, index) => {
        alarm(
          `SustainedThrottlingPool${index + 1}`,
          emf(METRICS.perPool.throttles, 'worker', 'Sum', { pool }).with({ period: Duration.minutes(5) }),
          10,
          3,
          `Bedrock has throttled the quota pool ${pool} (source region # model id) for 15 minutes: another application spends it. The budget moves records to the other pools, but files that prefer this one wait; raise its quota in Service Quotas in that region, or leave the pool out of the stack's endpoints or regions.`,
        );
      });
    alarm(
      'FailedBatchJobs',
      emf(METRICS.batch.jobsFailed, 'batch').with({ period: Duration.minutes(5) }),
      1,
      1,
      "Bedrock failed a batch job as a whole: its records ran on demand, at the on-demand price. The watcher's logs name the job; GetModelInvocationJob says why (often the service role, or the input).",
    );
    alarm(
      'StuckJobs',
      emf(METRICS.sweeper.stuckJobs, 'sweeper', 'Maximum').with({ period: Duration.minutes(5) }),
      1,
      1,
      'A job made no progress for STUCK_AFTER_MINUTES. Run "bedrock-batch status <job>" (the "Batch Jobs Stuck" event names it); check the DLQ and the worker and enqueue logs.',
    );

    const perModel = (metricName: string) =>
      props.modelIds.map((modelId) =>
        emf(metricName, 'worker', 'Sum', { model: modelId }).with({ label: `${metricName} ${modelId}` }),
      );
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
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
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
    );
    this.dashboard.addWidgets(
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
    );
    this.dashboard.addWidgets(
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
                [`hits${index}`]: emf(METRICS.perModel.cacheHitRecords, 'worker', 'Sum', { model: modelId }),
                [`misses${index}`]: emf(METRICS.perModel.cacheMissRecords, 'worker', 'Sum', {
                  model: modelId,
                }),
              },
              label: `cache hit rate ${modelId}`,
              period: Duration.minutes(1),
            }),
        ),
        right: perModel(METRICS.perModel.cacheSavingUsd),
      }),
      new cloudwatch.GraphWidget({
        title: 'Records and output tokens per quota pool',
        left: props.pools.map((pool) =>
          emf(METRICS.perPool.records, 'worker', 'Sum', { pool }).with({ label: `records ${pool}` }),
        ),
        right: props.pools.map((pool) =>
          emf(METRICS.perPool.outputTokens, 'worker', 'Sum', { pool }).with({
            label: `output tokens ${pool}`,
          }),
        ),
      }),
      new cloudwatch.GraphWidget({
        title: 'Model latency (ms)',
        left: props.modelIds.map((modelId) =>
          emf(METRICS.perModel.modelLatency, 'worker', 'p90', { model: modelId }),
        ),
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms }),
    );
  }

  private alarmTopic(props: MonitoringProps): sns.ITopic | undefined {
    if (props.alarmTopicArn !== undefined)
      return sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn);
    if (props.alarmEmail === undefined) return undefined;
    const topic = new sns.Topic(this, 'Alarms', { enforceSSL: true });
    topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    return topic;
  }
}
