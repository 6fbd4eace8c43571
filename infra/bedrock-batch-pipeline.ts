import { Duration, Stack } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EVENT_SOURCE, JOB_COMPLETED, JOB_ENDINGS, JOB_FAILED } from '../shared/contract/job-events.ts';
import { ConfigurationError } from '../shared/errors.ts';
import { poolName } from '../shared/quotas/pools.ts';
import type { BedrockBatchPipelineProps } from './bedrock-batch-pipeline-props.ts';
import { BatchLane } from './constructs/batch-lane.ts';
import { Finalize } from './constructs/finalize.ts';
import { Ingest } from './constructs/ingest.ts';
import { MessageBatchesApi } from './constructs/message-batches-api.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { Notifications } from './constructs/notifications.ts';
import { Processing } from './constructs/processing.ts';
import { Recovery } from './constructs/recovery.ts';
import { Storage } from './constructs/storage.ts';
import { type PipelineSettings, pipelineSettings, userCatalogEnvironment } from './props.ts';

/** The pipeline's functions, for a consumer to watch or extend. */
export interface PipelineFunctions {
  readonly enqueue: lambda.IFunction;
  readonly worker: lambda.IFunction;
  readonly finalizer: lambda.IFunction;
  readonly sweeper: lambda.IFunction;
  readonly batchWatcher: lambda.IFunction;
}

/**
 * The whole pipeline as one construct, in the order a file travels: storage, ingest (upload to queued or
 * staged records), processing (records to results), the batch lane (staged records through Bedrock batch
 * inference), finalize (results to the output), recovery (the sweeper), and monitoring over all.
 *
 * Upload JSON Lines under `inputs/` in `bucket`; each file's output and manifest land under `outputs/`, and
 * `completionEventPattern` matches the event on the account's default bus when a file is done (wire a Step
 * Functions trigger or a notification to it). The props are checked here: a bad value throws a
 * ConfigurationError naming it.
 *
 * @example
 * const pipeline = new BedrockBatchPipeline(stack, 'Pipeline', {
 *   bedrockRegion: 'us-west-2',
 *   allowedModels: ['opus-4.6', 'haiku-4.5'],
 *   tokensPerMinute: 400_000,
 *   maxDailyCost: 200,
 *   notifyEmail: 'data-team@example.com',
 * });
 * new events.Rule(stack, 'WhenDone', {
 *   eventPattern: pipeline.completionEventPattern,
 *   targets: [new targets.SfnStateMachine(nextStep)],
 * });
 */
export class BedrockBatchPipeline extends Construct {
  /** Inputs under `inputs/`, outputs under `outputs/`; EventBridge delivery on. The team's, when it brought one. */
  readonly bucket: s3.IBucket;
  /** The job ledger. */
  readonly ledgerTable: dynamodb.Table;
  readonly recordQueue: sqs.Queue;
  readonly recordDeadLetterQueue: sqs.Queue;
  readonly finalizeQueue: sqs.Queue;
  readonly finalizeDeadLetterQueue: sqs.Queue;
  /** Uploads (or the rest of large files) that could not be read on any retry. */
  readonly enqueueFailureQueue: sqs.Queue;
  readonly functions: PipelineFunctions;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: readonly cloudwatch.Alarm[];
  /** Where each job's end is sent, when `notifyEmail` or `notifyTopicArn` is given. */
  readonly notificationTopic: sns.ITopic | undefined;
  /** Anthropic's Message Batches API over the pipeline, when the `messageBatchesApi` prop asks for it. */
  readonly messageBatchesApi: MessageBatchesApi | undefined;
  /** "Batch Job Completed": detail has jobId, input, output, manifest, counts, tokens, estimatedCostUsd, cache. */
  readonly completionEventPattern: events.EventPattern = {
    source: [EVENT_SOURCE],
    detailType: [JOB_COMPLETED],
  };
  /** "Batch Job Failed": a file that could not run at all; detail has jobId, input and reason. */
  readonly failureEventPattern: events.EventPattern = { source: [EVENT_SOURCE], detailType: [JOB_FAILED] };
  /**
   * Every end of a job, one per job: completed, "Batch Job Canceled" and "Batch Job Superseded" (with output
   * and manifest as far as the job went, and `status`), or failed.
   */
  readonly endEventPattern: events.EventPattern = { source: [EVENT_SOURCE], detailType: [...JOB_ENDINGS] };

  constructor(scope: Construct, id: string, props: BedrockBatchPipelineProps) {
    // Checked first: props that throw leave nothing behind in the consumer's tree.
    const settings = pipelineSettings(props);
    super(scope, id);
    const storage = new Storage(this, 'Storage', settings);
    const finalize = new Finalize(this, 'Finalize', { settings, storage });
    const finalizeQueue = finalize.jobs.queue;
    const records = new Processing(this, 'Processing', { settings, storage, finalizeQueue }).records;
    const batchLane = new BatchLane(this, 'BatchLane', {
      settings,
      storage,
      recordQueue: records.queue,
      finalizeQueue,
    });
    const ingest = new Ingest(this, 'Ingest', {
      settings,
      storage,
      recordQueue: records.queue,
      finalizeQueue,
      batchLane,
    });
    const recovery = new Recovery(this, 'Recovery', {
      storage,
      recordDeadLetters: records.deadLetterQueue,
      finalizeQueue,
      stuckAfterMinutes: settings.stuckAfterMinutes,
      functionProps: settings.functionProps,
    });
    this.functions = {
      enqueue: ingest.enqueue.function,
      worker: records.function.function,
      finalizer: finalize.jobs.function.function,
      sweeper: recovery.sweeper.function,
      batchWatcher: batchLane.watcher.function,
    };
    this.messageBatchesApi = this.messageBatchesApiOf(settings, storage);
    const monitoring = new Monitoring(this, 'Monitoring', {
      recordQueue: records.queue,
      recordDeadLetters: records.deadLetterQueue,
      finalizeDeadLetters: finalize.jobs.deadLetterQueue,
      enqueueFailures: ingest.failures,
      functions: byServiceName(this.functions),
      modelIds: settings.resolvedModels.map((model) => model.modelId),
      pools: settings.poolModels.map(poolName),
      oldestMessageAlarmAge: Duration.seconds(settings.oldestRecordAlarmSeconds),
      messageBatchesApi: this.messageBatchesApi?.api,
      alarmEmail: settings.alarmEmail,
      alarmTopicArn: settings.alarmTopicArn,
    });
    this.notificationTopic = new Notifications(this, 'Notifications', {
      endEventPattern: this.endEventPattern,
      notifyEmail: settings.notifyEmail,
      notifyTopicArn: settings.notifyTopicArn,
    }).topic;
    addSettings(this.functions, userCatalogEnvironment(settings));
    this.bucket = storage.bucket;
    this.ledgerTable = storage.ledger;
    this.recordQueue = records.queue;
    this.recordDeadLetterQueue = records.deadLetterQueue;
    this.finalizeQueue = finalizeQueue;
    this.finalizeDeadLetterQueue = finalize.jobs.deadLetterQueue;
    this.enqueueFailureQueue = ingest.failures;
    this.dashboard = monitoring.dashboard;
    this.alarms = monitoring.alarms;
  }

  private messageBatchesApiOf(settings: PipelineSettings, storage: Storage): MessageBatchesApi | undefined {
    const { messageBatchesApi: api } = settings;
    if (api === undefined) return undefined;
    return new MessageBatchesApi(this, 'MessageBatches', {
      storage,
      settings,
      ...api,
      functionProps: settings.functionProps,
    });
  }
}

/** The functions by the names their metrics and logs go by (the batch watcher's is `batch`). */
function byServiceName({ batchWatcher, ...named }: PipelineFunctions) {
  return { ...named, batch: batchWatcher };
}

/**
 * Settings every function reads at its cold start, before its own (the deployment's catalog); then each
 * function's settings held to what Lambda takes.
 */
function addSettings(functions: PipelineFunctions, environment: Readonly<Record<string, string>>): void {
  for (const fn of Object.values(functions))
    for (const [name, value] of Object.entries(environment)) fn.addEnvironment(name, value);
  checkSettingsSize(functions);
}

/** Lambda holds a function's settings to 4 KB in all (names and values). */
const LAMBDA_SETTINGS_BYTES = 4_096;
/** What a value known only at deploy time (a queue URL, a table name) may take, at most. */
const DEPLOY_TIME_VALUE_BYTES = 128;

/**
 * Refuses, when the construct is created, settings Lambda would refuse at deploy: a long catalog prop beside
 * many allowed models can pass 4 KB.
 */
function checkSettingsSize(functions: PipelineFunctions): void {
  for (const [name, fn] of Object.entries(functions)) {
    const cfn = fn.node.defaultChild as lambda.CfnFunction;
    const resolved = Stack.of(fn).resolve(cfn.environment) as
      | { variables?: Record<string, unknown> }
      | undefined;
    const bytes = Object.entries(resolved?.variables ?? {}).reduce(
      (sum, [key, value]) =>
        sum + key.length + (typeof value === 'string' ? Buffer.byteLength(value) : DEPLOY_TIME_VALUE_BYTES),
      0,
    );
    if (bytes > LAMBDA_SETTINGS_BYTES)
      throw new ConfigurationError([
        `the ${name} function's settings would take up to ${bytes} bytes, more than the ${LAMBDA_SETTINGS_BYTES} Lambda holds: give fewer fields in catalog, or fewer allowedModels`,
      ]);
  }
}
