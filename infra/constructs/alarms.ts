import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { METRICS } from '../../shared/contract/metrics.ts';
import type { MonitoringProps } from './monitoring.ts';
import { emfMetric, waitingIn } from './monitoring-metrics.ts';

/** An alarm of the pipeline: what it watches, when it fires, and what the person it calls should do. */
export interface AlarmSpec {
  /** Its construct id, which names it in the stack: kept as it is, so an update does not replace it. */
  readonly id: string;
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly evaluationPeriods: number;
  readonly description: string;
}

/** Every alarm of the pipeline, in the order the dashboard lists them. */
export function pipelineAlarms(props: MonitoringProps): AlarmSpec[] {
  return [...queueAlarms(props), ...workerAlarms(props), ...stepAlarms(), ...apiAlarms(props)];
}

/** Messages no function could handle, and records that wait too long. */
function queueAlarms(props: MonitoringProps): AlarmSpec[] {
  return [
    {
      id: 'DeadLetters',
      metric: waitingIn(props.recordDeadLetters),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        'Record messages reached the DLQ: the worker could not handle them at all (not a Bedrock error, which becomes an error record). Read the worker logs for "record could not be handled", fix the cause, then run "bedrock-batch redrive".',
    },
    {
      id: 'FinalizeDeadLetters',
      metric: waitingIn(props.finalizeDeadLetters),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        'A job failed to finalize on every try; its message is in the finalize DLQ. Read the finalizer logs for its job id and fix the cause: the sweeper starts the finalization again while the job stays "finalizing".',
    },
    {
      id: 'EnqueueFailures',
      metric: waitingIn(props.enqueueFailures),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        'An upload (or the rest of a large file) could not be read on any retry; the event and its error are in the enqueue-failures queue. Read the enqueue logs for the key: a job that was created is read on by the sweeper once the cause is fixed; an upload that got no job needs uploading again.',
    },
    {
      id: 'OldestRecord',
      metric: props.recordQueue.metricApproximateAgeOfOldestMessage({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: props.oldestMessageAlarmAge.toSeconds(),
      evaluationPeriods: 3,
      description:
        'Records have waited long in the queue: the token budget or Bedrock quota is too small for the load, or workers are failing. Check BudgetWaits and BedrockThrottles on the dashboard; raise TOKENS_PER_MINUTE with the quota, or ask AWS for more quota.',
    },
  ];
}

/** Worker invocations that fail as a whole, and Bedrock throttling the pipeline (over all pools and per pool). */
function workerAlarms(props: MonitoringProps): AlarmSpec[] {
  const { worker } = props.functions;
  const throttles = (dimensions: Record<string, string>, name: string) =>
    emfMetric(name, 'worker', 'Sum', dimensions).with({ period: Duration.minutes(5) });
  // Over several pools, which one: the budget moves work to the others, so one starved pool stays quiet in
  // the sum while it slows every file that prefers it.
  const perPool = props.pools.length > 1 ? props.pools : [];
  return [
    {
      id: 'WorkerErrors',
      metric: new cloudwatch.MathExpression({
        expression: '100 * errors / MAX([invocations, 1])',
        usingMetrics: {
          errors: worker.metricErrors({ statistic: 'Sum' }),
          invocations: worker.metricInvocations({ statistic: 'Sum' }),
        },
        period: Duration.minutes(5),
        label: 'worker error %',
      }),
      threshold: 5,
      evaluationPeriods: 3,
      description:
        'More than 5% of worker invocations failed as a whole (timeouts, crashes), not single records. Read the worker logs; a timeout means the batch size or model latency needs a longer worker timeout.',
    },
    {
      id: 'SustainedThrottling',
      metric: throttles({}, METRICS.worker.bedrockThrottles),
      threshold: 10,
      evaluationPeriods: 3,
      description:
        'Bedrock has throttled the pipeline for 15 minutes although it stays within its own budget: another application shares the quota. The budget adapts, but jobs will be slow; raise the Bedrock quota or lower TOKENS_PER_MINUTE.',
    },
    ...perPool.map((pool, index) => ({
      id: `SustainedThrottlingPool${index + 1}`,
      metric: throttles({ pool }, METRICS.perPool.throttles),
      threshold: 10,
      evaluationPeriods: 3,
      description: `Bedrock has throttled the quota pool ${pool} (source region # model id) for 15 minutes: another application spends it. The budget moves records to the other pools, but files that prefer this one wait; raise its quota in Service Quotas in that region, or leave the pool out of the stack's endpoints or regions.`,
    })),
  ];
}

/** Batch jobs Bedrock failed, and jobs that stopped moving. */
function stepAlarms(): AlarmSpec[] {
  return [
    {
      id: 'FailedBatchJobs',
      metric: emfMetric(METRICS.batch.jobsFailed, 'batch').with({ period: Duration.minutes(5) }),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        "Bedrock failed a batch job as a whole: its records ran on demand, at the on-demand price. The watcher's logs name the job; GetModelInvocationJob says why (often the service role, or the input).",
    },
    {
      id: 'StuckJobs',
      metric: emfMetric(METRICS.sweeper.stuckJobs, 'sweeper', 'Maximum').with({
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        'A job made no progress for STUCK_AFTER_MINUTES. Run "bedrock-batch status <job>" (the "Batch Jobs Stuck" event names it); check the DLQ and the worker and enqueue logs.',
    },
  ];
}

/** Requests the Message Batches API failed on: its callers' SDKs retry, but a batch may not be created. */
function apiAlarms({ messageBatchesApi: api }: MonitoringProps): AlarmSpec[] {
  if (api === undefined) return [];
  return [
    {
      id: 'MessageBatchesApiErrors',
      metric: api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 5,
      evaluationPeriods: 1,
      description:
        'The Message Batches API answered 5xx to 5 or more requests in 5 minutes. Read the message-batches function\'s logs ("message batches request failed" names the path and the error); a 503 from the API itself means its function timed out or was throttled.',
    },
  ];
}
