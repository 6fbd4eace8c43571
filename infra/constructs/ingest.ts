import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvironmentOf, enqueueSettings } from '../../shared/config.ts';
import { ENQUEUE_CONTINUATION, EVENT_SOURCE } from '../../shared/contract/job-events.ts';
import { inputObjectCreatedPattern } from '../../shared/events/patterns.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';
import { bedrockEnvironment, type PipelineSettings, queueEnvironment } from '../props.ts';
import type { BatchLane } from './batch-lane.ts';
import { grantSend } from './key-use.ts';
import { LONG_STEP_TIMEOUT, PipelineFunction } from './pipeline-function.ts';
import { SecureQueue } from './secure-queue.ts';
import type { Storage } from './storage.ts';

export interface IngestProps {
  readonly settings: PipelineSettings;
  readonly storage: Storage;
  readonly recordQueue: sqs.IQueue;
  readonly finalizeQueue: sqs.IQueue;
  /** Staged files' parts are submitted by the enqueue function once it has read them. */
  readonly batchLane: BatchLane;
}

/**
 * From an upload to queued records: the rule that answers any upload under inputs/, the rule that continues a
 * large file in a new invocation, and the enqueue function. What EventBridge or Lambda could not deliver on
 * any retry lands in the enqueue-failures queue.
 */
export class Ingest extends Construct {
  readonly enqueue: PipelineFunction;
  readonly failures: sqs.Queue;

  constructor(scope: Construct, id: string, props: IngestProps) {
    super(scope, id);
    const { settings, storage } = props;
    this.enqueue = new PipelineFunction(this, 'Enqueue', {
      name: 'enqueue',
      overrides: settings.functionProps,
      timeout: LONG_STEP_TIMEOUT,
      environment: {
        ...bedrockEnvironment(settings),
        ...storage.environment,
        ...queueEnvironment(props.recordQueue, props.finalizeQueue),
        DEFAULT_LANE: settings.defaultLane,
        DEFAULT_CACHE: settings.promptCache,
        DEFAULT_TIER: settings.serviceTier,
        MAX_ERROR_RATE: String(settings.maxErrorRate),
        MAX_DECOMPRESSED_BYTES: String(settings.maxDecompressedBytes),
        TOKENS_PER_MINUTE: String(settings.tokensPerMinute),
        ...(settings.defaultDeadline === undefined ? {} : { DEFAULT_DEADLINE: settings.defaultDeadline }),
        BATCH_ROLE_ARN: props.batchLane.serviceRole.roleArn,
        DEADLINE_QUEUE_URL: props.batchLane.deadlines.queueUrl,
      } satisfies EnvironmentOf<typeof enqueueSettings>,
    });
    const enqueue = this.enqueue;
    storage.grantObjects(enqueue, 'read', ['inputs', 'work']);
    storage.grantObjects(enqueue, 'write', ['work']);
    storage.grantLedger(enqueue, ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    grantSend(props.recordQueue, enqueue.function);
    grantSend(props.finalizeQueue, enqueue.function);
    props.batchLane.allowSubmitting(enqueue, settings);
    enqueue.publishEvents();

    this.failures = new SecureQueue(this, 'Failures', {
      visibilityTimeout: Duration.minutes(5),
      maxReceiveCount: RETRY_LAYERS.maxReceives.enqueueFailures,
      encryptionKey: storage.key,
    }).queue;
    enqueue.function.configureAsyncInvoke({
      retryAttempts: RETRY_LAYERS.enqueueAsyncRetries,
      // As the CDK's SqsDestination, with the queue's key used only through SQS.
      onFailure: { bind: () => ({ destination: this.failures.queueArn }) },
    });
    grantSend(this.failures, enqueue.function);
    // EventBridge itself delivers what it cannot hand to the function to the rules' DLQ: with a
    // customer-managed key, the key must let it encrypt there.
    storage.key?.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    const target = new targets.LambdaFunction(enqueue.function, {
      retryAttempts: RETRY_LAYERS.enqueueEvent.retryAttempts,
      maxEventAge: Duration.hours(RETRY_LAYERS.enqueueEvent.maxEventAgeHours),
      deadLetterQueue: this.failures,
    });
    new events.Rule(this, 'StartJob', {
      description: 'An upload under inputs/ starts a job',
      eventPattern: inputObjectCreatedPattern(storage.bucket.bucketName),
      targets: [target],
    });
    new events.Rule(this, 'ContinueEnqueue', {
      description: 'A large file goes on in a new enqueue invocation',
      eventPattern: { source: [EVENT_SOURCE], detailType: [ENQUEUE_CONTINUATION] },
      targets: [target],
    });
  }
}
