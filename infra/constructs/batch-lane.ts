import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { visibilityTimeoutFor } from '../../shared/budget/worker-shape.ts';
import type { batchWatcherSettings, EnvironmentOf } from '../../shared/config.ts';
import { batchJobStateChangePattern } from '../../shared/events/batch-job-change.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';
import {
  bedrockEnvironment,
  type PipelineSettings,
  queueEnvironment,
  spendingEnvironment,
} from '../props.ts';
import { bedrockInvokeStatements, invokedModelArn } from './bedrock-access.ts';
import { grantConsume, grantSend } from './key-use.ts';
import { acknowledge, findingResource, LONG_STEP_TIMEOUT, PipelineFunction } from './pipeline-function.ts';
import { SecureQueue } from './secure-queue.ts';
import type { Storage } from './storage.ts';

export interface BatchLaneProps {
  readonly settings: PipelineSettings;
  readonly storage: Storage;
  readonly recordQueue: sqs.IQueue;
  readonly finalizeQueue: sqs.IQueue;
}

/** Where a job keeps its batch parts: `work/<job>/batch/part-<n>/{input,output,records}/`. */
const PARTS = 'work/*/batch/part-*';

/**
 * Bedrock batch inference as a second lane: the service role Bedrock assumes to read the staged parts and
 * write their output (only for this account's jobs), and the watcher function that collects ended jobs
 * (on Bedrock's state change events, and on a schedule because they are best effort), stops jobs past
 * their deadline and submits parts that waited for room. The enqueue function submits through
 * `allowSubmitting`.
 */
export class BatchLane extends Construct {
  readonly serviceRole: iam.Role;
  readonly watcher: PipelineFunction;
  /** Deadline alarms: delayed messages that wake the watcher at a job's deadline, to the second. */
  readonly deadlines: sqs.Queue;

  constructor(scope: Construct, id: string, props: BatchLaneProps) {
    super(scope, id);
    const { settings, storage } = props;
    this.serviceRole = this.createServiceRole(settings, storage);
    this.deadlines = new SecureQueue(this, 'Deadlines', {
      visibilityTimeout: Duration.seconds(visibilityTimeoutFor(LONG_STEP_TIMEOUT.toSeconds())),
      maxReceiveCount: RETRY_LAYERS.maxReceives.deadlineAlarms,
      encryptionKey: storage.key,
    }).queue;
    this.watcher = new PipelineFunction(this, 'Watcher', {
      name: 'batch',
      overrides: settings.functionProps,
      timeout: LONG_STEP_TIMEOUT,
      environment: {
        ...bedrockEnvironment(settings),
        ...storage.environment,
        ...queueEnvironment(props.recordQueue, props.finalizeQueue),
        BATCH_ROLE_ARN: this.serviceRole.roleArn,
        DEADLINE_QUEUE_URL: this.deadlines.queueUrl,
        ...spendingEnvironment(settings),
      } satisfies EnvironmentOf<typeof batchWatcherSettings>,
    });
    const watcher = this.watcher;
    // An early alarm is sent again, nearer its time; one at a time, so a failure retries only itself.
    new lambda.EventSourceMapping(this, 'DeadlineAlarms', {
      target: watcher.function,
      eventSourceArn: this.deadlines.queueArn,
      batchSize: 1,
    });
    grantConsume(this.deadlines, watcher.function);
    storage.grantObjects(watcher, 'read', ['work']);
    storage.grantObjects(watcher, 'write', ['work']);
    storage.grantList(watcher);
    storage.grantLedger(watcher, ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query']);
    grantSend(props.recordQueue, watcher.function);
    grantSend(props.finalizeQueue, watcher.function);
    this.allowSubmitting(watcher, settings);
    const target = new targets.LambdaFunction(watcher.function, {
      retryAttempts: RETRY_LAYERS.sweeperRetries,
    });
    new events.Rule(this, 'JobStateChange', {
      description: "Collects a batch part once Bedrock's batch job has ended",
      eventPattern: {
        source: [...batchJobStateChangePattern.source],
        detailType: [...batchJobStateChangePattern['detail-type']],
      },
      targets: [target],
    });
    new events.Rule(this, 'Watch', {
      description: 'Submits waiting batch parts, collects ended jobs no event announced, stops late jobs',
      schedule: events.Schedule.rate(Duration.minutes(5)),
      targets: [target],
    });
  }

  /**
   * Lets a function submit, watch and stop batch jobs for the allowed models, passing only the service role,
   * and set the deadline alarms of the jobs it submits.
   */
  allowSubmitting(fn: PipelineFunction, settings: PipelineSettings): void {
    grantSend(this.deadlines, fn.function);
    const { account, partition, region } = Stack.of(this);
    const jobs = `arn:${partition}:bedrock:${region}:${account}:model-invocation-job/*`;
    fn.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['bedrock:CreateModelInvocationJob'],
        resources: [jobs, ...settings.resolvedModels.map((model) => invokedModelArn(this, model))],
      }),
    );
    fn.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['bedrock:GetModelInvocationJob', 'bedrock:StopModelInvocationJob'],
        resources: [jobs],
      }),
    );
    fn.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.serviceRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
      }),
    );
    const named = (value: string, token: string) => (Token.isUnresolved(value) ? `<${token}>` : value);
    acknowledge(fn, {
      [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:${named(region, 'AWS::Region')}:${named(account, 'AWS::AccountId')}:model-invocation-job/*]`]:
        'Batch job ARNs are made by Bedrock when a job is created; the pipeline names its jobs but cannot know their ids in advance.',
    });
  }

  private createServiceRole(settings: PipelineSettings, storage: Storage): iam.Role {
    const { account, partition, region } = Stack.of(this);
    const role = new iam.Role(this, 'ServiceRole', {
      description:
        'Bedrock batch inference for bedrock-batch-pipeline: reads staged parts, writes their output',
      assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnLike: {
            'aws:SourceArn': `arn:${partition}:bedrock:${region}:${account}:model-invocation-job/*`,
          },
        },
      }),
    });
    const { bucket } = storage;
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${PARTS}/input/*`)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(`${PARTS}/output/*`)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': 'work/*' } },
      }),
    );
    for (const statement of bedrockInvokeStatements(this, settings.resolvedModels, { countTokens: false }))
      role.addToPolicy(statement);
    storage.grantObjectEncryption(role);
    const parts = (folder: string) => findingResource(this, bucket.arnForObjects(`${PARTS}/${folder}/*`));
    acknowledge(role, {
      [`AwsSolutions-IAM5[Resource::${parts('input')}]`]:
        "The staged parts' input, per job and part: their keys are made while the file is read.",
      [`AwsSolutions-IAM5[Resource::${parts('output')}]`]:
        "Where Bedrock writes each part's output, under the job id it makes itself.",
      ...Object.fromEntries(
        settings.resolvedModels
          .filter((model) => model.endpoint === 'regional')
          .map((model) => [
            `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${model.model.bedrockId}]`,
            'A geographic inference profile picks the region the model runs in; the statement is conditioned on bedrock:InferenceProfileArn.',
          ]),
      ),
    });
    return role;
  }
}
