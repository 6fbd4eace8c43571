import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ENQUEUE_CONTINUATION, EVENT_SOURCE } from '../functions/adapters/events.ts';
import { LEDGER_TABLE } from '../functions/adapters/ledger-table.ts';
import type {
  EnvironmentOf,
  enqueueSettings,
  finalizerSettings,
  sweeperSettings,
  workerSettings,
} from '../shared/config.ts';
import { inputObjectCreatedPattern } from '../shared/events/patterns.ts';
import { WORKER_BATCH } from '../shared/pipeline/worker.ts';
import { RETRY_LAYERS } from '../shared/retry-layers.ts';
import { STACK_OUTPUTS } from '../shared/stack-outputs.ts';
import { bedrockInvokeStatements } from './constructs/bedrock-access.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { acknowledge, PipelineFunction } from './constructs/pipeline-function.ts';
import { SecureQueue } from './constructs/secure-queue.ts';
import { type PipelinePropsInput, pipelineSettings } from './props.ts';

export interface PipelineStackProps extends StackProps {
  readonly pipeline: PipelinePropsInput;
}

/** The whole pipeline: bucket, rules, queues, functions, ledger, least-privilege IAM, dashboard and alarms. */
export class PipelineStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly ledger: dynamodb.Table;
  readonly records: SecureQueue;
  readonly finalize: SecureQueue;
  readonly functions: Record<'enqueue' | 'worker' | 'finalizer' | 'sweeper', PipelineFunction>;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const settings = pipelineSettings(props.pipeline);
    const key = settings.useKms
      ? new kms.Key(this, 'Key', { enableKeyRotation: true, description: 'bedrock-batch-pipeline data' })
      : undefined;
    const retention = Duration.days(settings.retentionDays);

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      eventBridgeEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      ...(key === undefined
        ? { encryption: s3.BucketEncryption.S3_MANAGED }
        : { encryption: s3.BucketEncryption.KMS, encryptionKey: key, bucketKeyEnabled: true }),
      // CDK's own types do not satisfy exactOptionalPropertyTypes (Bucket.isWebsite); the value is right.
      serverAccessLogsBucket: accessLogs as unknown as s3.IBucket,
      serverAccessLogsPrefix: 'bucket/',
      lifecycleRules: [
        { id: 'intermediate-results', prefix: 'work/', expiration: retention },
        {
          id: 'old-versions',
          noncurrentVersionExpiration: retention,
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.ledger = new dynamodb.Table(this, 'Ledger', {
      partitionKey: { name: LEDGER_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: LEDGER_TABLE.timeToLive,
      ...(key === undefined
        ? { encryption: dynamodb.TableEncryption.AWS_MANAGED }
        : { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: key }),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.ledger.addGlobalSecondaryIndex({
      indexName: LEDGER_TABLE.activeJobsIndex.name,
      partitionKey: { name: LEDGER_TABLE.activeJobsIndex.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: LEDGER_TABLE.activeJobsIndex.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });

    const workerTimeout = Duration.seconds(settings.workerTimeoutSeconds);
    const longTimeout = Duration.minutes(15);
    // Retries come back through the queue (waiting for quota does not: such records are sent again), and
    // the ledger ends a record after its attempts; the DLQ is for messages the code cannot handle at all.
    this.records = new SecureQueue(this, 'Records', {
      visibilityTimeout: Duration.seconds(workerTimeout.toSeconds() * 6),
      maxReceiveCount: RETRY_LAYERS.maxReceives.records,
      encryptionKey: key,
    });
    this.finalize = new SecureQueue(this, 'Finalize', {
      visibilityTimeout: Duration.seconds(longTimeout.toSeconds() * 6),
      maxReceiveCount: RETRY_LAYERS.maxReceives.finalize,
      encryptionKey: key,
    });
    const enqueueFailures = new SecureQueue(this, 'EnqueueFailures', {
      visibilityTimeout: Duration.minutes(5),
      maxReceiveCount: RETRY_LAYERS.maxReceives.enqueueFailures,
      encryptionKey: key,
    });

    const bedrockEnvironment = {
      BEDROCK_REGION: settings.bedrockRegion,
      BEDROCK_MODEL: settings.defaultModel,
      BEDROCK_ENDPOINT: settings.endpoint,
      DEFAULT_MAX_TOKENS: String(settings.defaultMaxTokens),
      ALLOWED_MODEL_IDS: settings.resolvedModels.map((model) => model.modelId).join(','),
    };
    const storage = {
      BUCKET_NAME: this.bucket.bucketName,
      LEDGER_TABLE_NAME: this.ledger.tableName,
      RETENTION_DAYS: String(settings.retentionDays),
    };
    const queues = {
      RECORD_QUEUE_URL: this.records.queue.queueUrl,
      FINALIZE_QUEUE_URL: this.finalize.queue.queueUrl,
    };
    this.functions = {
      enqueue: new PipelineFunction(this, 'Enqueue', {
        name: 'enqueue',
        timeout: longTimeout,
        environment: { ...bedrockEnvironment, ...storage, ...queues } satisfies EnvironmentOf<
          typeof enqueueSettings
        >,
      }),
      worker: new PipelineFunction(this, 'Worker', {
        name: 'worker',
        timeout: workerTimeout,
        environment: {
          ...bedrockEnvironment,
          ...storage,
          ...queues,
          TOKENS_PER_MINUTE: String(settings.tokensPerMinute),
          LEASE_SECONDS: String(workerTimeout.toSeconds() + 60),
        } satisfies EnvironmentOf<typeof workerSettings>,
      }),
      finalizer: new PipelineFunction(this, 'Finalizer', {
        name: 'finalizer',
        timeout: longTimeout,
        memorySize: 2_048,
        environment: {
          ...storage,
          FINALIZE_QUEUE_URL: this.finalize.queue.queueUrl,
        } satisfies EnvironmentOf<typeof finalizerSettings>,
      }),
      sweeper: new PipelineFunction(this, 'Sweeper', {
        name: 'sweeper',
        timeout: Duration.minutes(1),
        memorySize: 256,
        environment: {
          LEDGER_TABLE_NAME: this.ledger.tableName,
          RECORD_DLQ_URL: this.records.deadLetterQueue.queueUrl,
          FINALIZE_QUEUE_URL: this.finalize.queue.queueUrl,
          // Longer than the enqueue and finalizer functions can run: a step this quiet has stopped.
          RESUME_AFTER_MINUTES: String(longTimeout.toMinutes() + 1),
          STUCK_AFTER_MINUTES: String(settings.stuckAfterMinutes),
        } satisfies EnvironmentOf<typeof sweeperSettings>,
      }),
    };
    const { enqueue, worker, finalizer, sweeper } = this.functions;

    // Least privilege: each function the actions it calls, on the prefixes it works in.
    const objects = (fn: PipelineFunction, access: 'read' | 'write', prefixes: readonly string[]) => {
      fn.function.addToRolePolicy(
        new iam.PolicyStatement({
          // GetObject also answers HeadObject; PutObject also covers the parts of a multipart upload.
          actions: access === 'read' ? ['s3:GetObject'] : ['s3:PutObject', 's3:AbortMultipartUpload'],
          resources: prefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}/*`)),
        }),
      );
      if (access === 'read') key?.grantDecrypt(fn.function);
      else key?.grantEncryptDecrypt(fn.function);
    };
    objects(enqueue, 'read', ['inputs', 'work']);
    objects(enqueue, 'write', ['work']);
    objects(worker, 'read', ['inputs', 'work']);
    objects(worker, 'write', ['work']);
    objects(finalizer, 'read', ['work']);
    objects(finalizer, 'write', ['outputs']);
    finalizer.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': 'work/*' } },
      }),
    );
    // A transaction's items need the item actions they carry (UpdateItem); the index is read by the sweeper.
    const ledgerActions = {
      enqueue: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
      worker: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      finalizer: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      sweeper: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
    } as const;
    for (const [name, actions] of Object.entries(ledgerActions) as Array<
      [keyof typeof ledgerActions, readonly string[]]
    >) {
      this.ledger.grant(this.functions[name].function, ...actions);
      key?.grantEncryptDecrypt(this.functions[name].function);
    }
    this.records.queue.grantSendMessages(enqueue.function);
    this.finalize.queue.grantSendMessages(enqueue.function);
    this.finalize.queue.grantSendMessages(worker.function);
    this.finalize.queue.grantSendMessages(sweeper.function);
    this.finalize.queue.grantSendMessages(finalizer.function);
    this.records.deadLetterQueue.grant(sweeper.function, 'sqs:GetQueueAttributes');
    for (const statement of bedrockInvokeStatements(this, settings.resolvedModels))
      worker.function.addToRolePolicy(statement);
    const bus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    for (const fn of [enqueue, finalizer, sweeper]) bus.grantPutEventsTo(fn.function);

    worker.function.addEventSource(
      new SqsEventSource(this.records.queue, {
        batchSize: settings.workerBatchSize,
        maxBatchingWindow: Duration.seconds(WORKER_BATCH.windowSeconds),
        maxConcurrency: settings.workerMaxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    finalizer.function.addEventSource(
      new SqsEventSource(this.finalize.queue, { batchSize: 1, maxConcurrency: 2 }),
    );
    enqueue.function.configureAsyncInvoke({
      retryAttempts: RETRY_LAYERS.enqueueAsyncRetries,
      onFailure: new destinations.SqsDestination(enqueueFailures.queue),
    });

    // EventBridge itself delivers what it cannot hand to the enqueue function to the rules' DLQ: with a
    // customer-managed key, the key must let it encrypt there.
    key?.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    const enqueueTarget = new targets.LambdaFunction(enqueue.function, {
      retryAttempts: RETRY_LAYERS.enqueueEvent.retryAttempts,
      maxEventAge: Duration.hours(RETRY_LAYERS.enqueueEvent.maxEventAgeHours),
      deadLetterQueue: enqueueFailures.queue,
    });
    new events.Rule(this, 'StartJob', {
      description: 'An inputs/*.jsonl upload starts a job',
      eventPattern: inputObjectCreatedPattern(this.bucket.bucketName),
      targets: [enqueueTarget],
    });
    new events.Rule(this, 'ContinueEnqueue', {
      description: 'A large file goes on in a new enqueue invocation',
      eventPattern: { source: [EVENT_SOURCE], detailType: [ENQUEUE_CONTINUATION] },
      targets: [enqueueTarget],
    });
    new events.Rule(this, 'SweepStuckJobs', {
      description: 'Looks for stuck jobs and DLQ messages',
      schedule: events.Schedule.rate(Duration.minutes(5)),
      targets: [new targets.LambdaFunction(sweeper.function, { retryAttempts: RETRY_LAYERS.sweeperRetries })],
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      recordQueue: this.records.queue,
      recordDeadLetters: this.records.deadLetterQueue,
      finalizeDeadLetters: this.finalize.deadLetterQueue,
      enqueueFailures: enqueueFailures.queue,
      functions: {
        enqueue: enqueue.function,
        worker: worker.function,
        finalizer: finalizer.function,
        sweeper: sweeper.function,
      },
      modelIds: settings.resolvedModels.map((model) => model.modelId),
      oldestMessageAlarmAge: Duration.seconds(settings.oldestRecordAlarmSeconds),
      alarmEmail: settings.alarmEmail,
      alarmTopicArn: settings.alarmTopicArn,
    });

    const prefixScoped =
      'Object access is limited to the prefixes the function works in (inputs/, work/, outputs/); keys under them are per job and per record, so they cannot be listed in advance.';
    const s3Findings = (prefixes: readonly string[]) =>
      Object.fromEntries(
        prefixes.map((prefix) => [
          `AwsSolutions-IAM5[Resource::<${this.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${prefix}/*]`,
          prefixScoped,
        ]),
      );
    const indexFinding = {
      [`AwsSolutions-IAM5[Resource::<${this.getLogicalId(this.ledger.node.defaultChild as dynamodb.CfnTable)}.Arn>/index/*]`]:
        "The ledger's own indexes (the active-jobs index), granted with the table.",
    };
    const anyRegionThroughProfile = Object.fromEntries(
      settings.resolvedModels
        .filter((model) => model.endpoint === 'regional')
        .map((model) => [
          `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${model.model.bedrockId}]`,
          'A geographic inference profile picks the region the model runs in (and may add regions); the statement is conditioned on bedrock:InferenceProfileArn, so the model is reachable only through the profile.',
        ]),
    );
    acknowledge(enqueue.function, { ...s3Findings(['inputs', 'work']), ...indexFinding });
    acknowledge(worker.function, {
      ...anyRegionThroughProfile,
      ...s3Findings(['inputs', 'work']),
      ...indexFinding,
    });
    acknowledge(finalizer.function, { ...s3Findings(['work', 'outputs']), ...indexFinding });
    acknowledge(sweeper.function, indexFinding);
    if (key !== undefined) {
      const kmsFindings = Object.fromEntries(
        ['kms:GenerateDataKey*', 'kms:ReEncrypt*'].map((action) => [
          `AwsSolutions-IAM5[Action::${action}]`,
          "The CDK grant helpers' action families for the pipeline's own key, and only that key.",
        ]),
      );
      for (const fn of [enqueue, worker, finalizer, sweeper]) acknowledge(fn.function, kmsFindings);
    }
    for (const child of this.node.children.filter((construct) =>
      construct.node.id.startsWith('BucketNotificationsHandler'),
    )) {
      acknowledge(child, {
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]':
          "CDK's own handler that turns on the bucket's EventBridge delivery; it only writes its logs.",
      });
    }

    new CfnOutput(this, STACK_OUTPUTS.bucket, { value: this.bucket.bucketName });
    new CfnOutput(this, STACK_OUTPUTS.tableName, { value: this.ledger.tableName });
    new CfnOutput(this, STACK_OUTPUTS.recordQueueUrl, { value: this.records.queue.queueUrl });
    new CfnOutput(this, STACK_OUTPUTS.recordDlqUrl, { value: this.records.deadLetterQueue.queueUrl });
  }
}
