import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { App, type CfnElement, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import type { BedrockBatchPipelineProps } from '../../infra/bedrock-batch-pipeline-props.ts';
import { bedrockInvokeStatements } from '../../infra/constructs/bedrock-access.ts';
import { PipelineFunction } from '../../infra/constructs/pipeline-function.ts';
import { QueueWorker } from '../../infra/constructs/queue-worker.ts';
import { PipelineStack } from '../../infra/pipeline-stack.ts';
import { bedrockEnvironment, pipelineSettings } from '../../infra/props.ts';
import {
  batchWatcherSettings,
  enqueueSettings,
  finalizerSettings,
  loadConfig,
  sweeperSettings,
  workerSettings,
} from '../../shared/config.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import {
  functionNamed as functionNamedIn,
  type PolicyStatement,
  pipelineFunctions,
  roleOf,
  roleStatements,
} from '../support/cdk-template.ts';

let template: Template;
beforeAll(() => {
  const app = new App();
  const stack = new PipelineStack(app, 'Pipeline', {
    pipeline: {
      bedrockRegion: 'us-west-2',
      defaultModel: 'opus-4.6',
      allowedModels: ['opus-4.6', 'haiku-4.5'],
      tokensPerMinute: 2_000_000,
      defaultMaxTokens: 1_000,
      alarmEmail: 'oncall@example.com',
      notifyEmail: 'data-team@example.com',
    },
    env: { region: 'us-west-2', account: '123456789012' },
  });
  template = Template.fromStack(stack);
}, 120_000);

/** The synthesized function with this Powertools service name. */
const functionNamed = (name: string) => functionNamedIn(template, name);

describe('the bucket', () => {
  it('sends its events to EventBridge, blocks public access, takes TLS only, is versioned and encrypted', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: Match.absent(),
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'work/', ExpirationInDays: 30, Status: 'Enabled' }),
        ]),
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'bucket/' }),
    });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('the rules', () => {
  it('start a job for any upload under inputs/ in this bucket only, with the pattern the local shim matches, retries and a DLQ', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: {
          bucket: { name: [{ Ref: Match.stringLikeRegexp('^PipelineStorageBucket') }] },
          object: { key: [{ prefix: 'inputs/' }] },
        },
      },
      Targets: [
        Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    });
  });

  it('continue large files and sweep for stuck jobs every five minutes', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['bedrock-batch-pipeline'], 'detail-type': ['Enqueue Continuation'] },
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
  });
});

describe('the record queue', () => {
  it('hides a record six times the worker timeout, keeps its DLQ for 100 receives, is encrypted and TLS-only', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 1_800,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 100 },
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('feeds the worker in batches with partial batch responses and a concurrency derived from the quota', () => {
    // 2,000,000 tokens a minute / (1,000 + 400 x 5 per typical record) = 11.1 records a second; x 10 s of
    // latency x 2 headroom = 222 records in flight = 12 batches of 20, and one more waiting its turn.
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 20,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 13 },
    });
  });
});

describe('every queue that feeds a function', () => {
  it('hides a message at least six times the timeout of the function it feeds', () => {
    // Prepare
    const queues = template.findResources('AWS::SQS::Queue');
    const functions = template.findResources('AWS::Lambda::Function');
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));

    // Act
    const pairs = mappings.map((mapping) => {
      const queueId = mapping.Properties.EventSourceArn['Fn::GetAtt'][0] as string;
      const functionId = mapping.Properties.FunctionName.Ref as string;
      return {
        visibility: queues[queueId]?.Properties.VisibilityTimeout as number,
        timeout: functions[functionId]?.Properties.Timeout as number,
      };
    });

    // Assess
    expect(pairs.length).toBeGreaterThanOrEqual(2);
    for (const { visibility, timeout } of pairs) expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('gives the worker the lease the derived shape says: its timeout and a minute, and no spending cap unasked', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 300,
      Environment: {
        Variables: Match.objectLike({ LEASE_SECONDS: '360', MAX_DAILY_COST_USD: Match.absent() }),
      },
    });
  });
});

describe('a queue worker', () => {
  it.each([
    ['a 60-second consumer', 60, 360],
    ['a 15-minute consumer', 900, 5_400],
  ])(
    'hides a message six times the timeout of %s, redrives to its DLQ and feeds the function',
    (_case, timeoutSeconds, visibility) => {
      // Prepare
      const stack = new Stack(new App(), 'Queues');

      // Act
      const worker = new QueueWorker(stack, 'Consumer', {
        name: 'sweeper',
        timeout: Duration.seconds(timeoutSeconds),
        maxReceiveCount: 7,
        environment: (queue) => ({ OWN_QUEUE_URL: queue.queueUrl }),
        eventSource: { batchSize: 3, reportBatchItemFailures: true },
      });
      const queues = Template.fromStack(stack);

      // Assess
      queues.hasResourceProperties('AWS::SQS::Queue', {
        VisibilityTimeout: visibility,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('DeadLetters'), 'Arn'] },
          maxReceiveCount: 7,
        },
      });
      queues.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        BatchSize: 3,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        EventSourceArn: {
          'Fn::GetAtt': [stack.getLogicalId(worker.queue.node.defaultChild as CfnElement), 'Arn'],
        },
      });
      queues.hasResourceProperties('AWS::Lambda::Function', {
        Timeout: timeoutSeconds,
        Environment: {
          Variables: Match.objectLike({
            OWN_QUEUE_URL: { Ref: stack.getLogicalId(worker.queue.node.defaultChild as CfnElement) },
          }),
        },
      });
    },
    120_000,
  );

  it('refuses fewer than five receives before the DLQ', () => {
    const build = () =>
      new QueueWorker(new Stack(new App(), 'Unsafe'), 'Consumer', {
        name: 'sweeper',
        timeout: Duration.seconds(60),
        maxReceiveCount: 1,
        environment: () => ({}),
        eventSource: { batchSize: 1 },
      });
    expect(build).toThrow(/maxReceiveCount must be 5 or more/);
  });
});

describe('the finalize queue', () => {
  it('hides a job six times the finalizer timeout and feeds one job at a time, two at once', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      VisibilityTimeout: 5_400,
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });
});

describe('the functions', () => {
  it('run on Node.js 22 on arm64, traced, with their settings', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      Timeout: 300,
      Environment: {
        Variables: Match.objectLike({
          BEDROCK_REGION: 'us-west-2',
          BEDROCK_MODEL: 'opus-4.6',
          BEDROCK_ENDPOINT: 'global',
          TOKENS_PER_MINUTE: '2000000',
          POWERTOOLS_SERVICE_NAME: 'worker',
          NODE_OPTIONS: '--enable-source-maps',
        }),
      },
    });
    expect(
      Object.keys(template.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } })),
    ).toHaveLength(5);
  });

  it('tell the functions how long finished jobs stay in the ledger', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'finalizer', RETENTION_DAYS: '30' }),
      },
    });
  });

  it('keep their logs a month', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it.each([
    ['enqueue', enqueueSettings],
    ['worker', workerSettings],
    ['finalizer', finalizerSettings],
    ['sweeper', sweeperSettings],
    ['batch', batchWatcherSettings],
  ] as const)('give the %s function an environment its own config loader accepts', (name, schema) => {
    // Prepare: resources' names and URLs are tokens until deployment; any text stands for them here.
    const fn = functionNamed(name);
    const environment = Object.fromEntries(
      Object.entries(fn.Properties.Environment.Variables as Record<string, unknown>).map(
        ([variable, value]) => [
          variable,
          typeof value === 'string'
            ? value
            : variable.endsWith('_ARN')
              ? `arn:aws:iam::123456789012:role/deployed-${variable.toLowerCase()}`
              : `deployed-${variable.toLowerCase()}`,
        ],
      ),
    );

    // Act
    const load = () => loadConfig(schema, environment);

    // Assess
    expect(load).not.toThrow();
  });

  it('are bundled minified but keeping class names, so logged errors name their class', async () => {
    // Prepare
    const app = new App();
    new PipelineStack(app, 'Bundled', { pipeline: { bedrockRegion: 'us-west-2' } });

    // Act
    const assembly = app.synth();
    const bundles = await Promise.all(
      (await readdir(assembly.directory))
        .filter((entry) => entry.startsWith('asset.'))
        .map((entry) => readFile(path.join(assembly.directory, entry, 'index.mjs'), 'utf8').catch(() => '')),
    );

    // Assess: minified names would leave no class name as text; esbuild's keepNames writes each one down.
    const named = (className: string) => bundles.some((code) => code.includes(`"${className}"`));
    expect(bundles.length).toBeGreaterThanOrEqual(4);
    expect(
      ['ConfigurationError', 'InputChangedError', 'PipelineError'].filter((name) => !named(name)),
    ).toEqual([]);
  }, 120_000);

  it('trace without capturing what the handlers return', () => {
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (resource) => resource.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME !== undefined,
    ))
      expect(fn.Properties.Environment.Variables.POWERTOOLS_TRACER_CAPTURE_RESPONSE).toBe('false');
  });

  it.each([
    [
      'enqueue',
      [
        'bedrock:CreateModelInvocationJob',
        'bedrock:GetModelInvocationJob',
        'bedrock:StopModelInvocationJob',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:PutObject',
      ],
    ],
    [
      'batch',
      [
        'bedrock:CreateModelInvocationJob',
        'bedrock:GetModelInvocationJob',
        'bedrock:StopModelInvocationJob',
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ],
    ],
    [
      'worker',
      [
        'bedrock:CountTokens',
        'bedrock:InvokeModel',
        'dynamodb:GetItem',
        'dynamodb:UpdateItem',
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ],
    ],
    [
      'finalizer',
      [
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        's3:AbortMultipartUpload',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
      ],
    ],
    ['sweeper', ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem']],
  ])('%s gets the S3, DynamoDB and Bedrock actions it calls and no others', (name, expected) => {
    // Prepare: the policies attached to the role of the function with this service name.
    const statements = roleStatements(template, functionNamed(name));
    const actions = statements
      .flatMap((statement) => [statement.Action].flat())
      .filter((action) => /^(s3|dynamodb|bedrock):/.test(action));
    expect([...new Set(actions)].sort()).toEqual(expected);
  });

  it('let the worker write results and nothing else under work/ (staged batch input stays out of reach)', () => {
    // Prepare
    const writes = roleStatements(template, functionNamed('worker')).filter((statement) =>
      [statement.Action].flat().includes('s3:PutObject'),
    );

    // Assess
    expect(writes).toHaveLength(1);
    expect(JSON.stringify(writes[0]?.Resource)).toMatch(/"\/work\/\*\/results\/\*"\]\]\}\]?$/);
  });

  it('never get bedrock actions on "*"', () => {
    const policies = template.findResources('AWS::IAM::Policy');
    for (const policy of Object.values(policies)) {
      for (const statement of policy.Properties.PolicyDocument.Statement as Array<{
        Action: string | string[];
        Resource: unknown;
      }>) {
        const actions = [statement.Action].flat();
        if (actions.some((action) => action.startsWith('bedrock:'))) expect(statement.Resource).not.toBe('*');
      }
    }
  });
});

describe('the batch lane', () => {
  it('has a service role only Bedrock batch jobs of this account can assume, reading staged parts and writing their output', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Principal: { Service: 'bedrock.amazonaws.com' },
            Condition: {
              StringEquals: { 'aws:SourceAccount': '123456789012' },
              ArnLike: {
                'aws:SourceArn': {
                  'Fn::Join': [
                    '',
                    [
                      'arn:',
                      { Ref: 'AWS::Partition' },
                      ':bedrock:us-west-2:123456789012:model-invocation-job/*',
                    ],
                  ],
                },
              },
            },
          }),
        ],
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 's3:GetObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/work/*/batch/part-*/input/*']] },
          }),
          Match.objectLike({
            Action: 's3:PutObject',
            Resource: { 'Fn::Join': ['', [Match.anyValue(), '/work/*/batch/part-*/output/*']] },
          }),
        ]),
      },
    });
  });

  it('lets the submitting functions pass that role to Bedrock and no other service', () => {
    for (const name of ['enqueue', 'batch']) {
      const role = roleOf(functionNamed(name));
      template.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: role }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Action: 'iam:PassRole',
              Condition: { StringEquals: { 'iam:PassedToService': 'bedrock.amazonaws.com' } },
            }),
          ]),
        },
      });
    }
  });

  it("watches Bedrock's batch job state changes, and every five minutes", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.bedrock'], 'detail-type': ['Batch Inference Job State Change'] },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PipelineBatchLaneWatcher'), 'Arn'] },
        }),
      ],
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PipelineBatchLaneWatcher'), 'Arn'] },
        }),
      ],
    });
  });

  it("wakes the watcher at a job's deadline: a queue of alarms feeding it one at a time, which only the submitters send to", () => {
    // Prepare
    const queues = template.findResources('AWS::SQS::Queue');
    const deadlinesId = Object.keys(queues).find((id) => id.startsWith('PipelineBatchLaneDeadlinesQueue'));
    if (deadlinesId === undefined) throw new Error('no deadline queue');
    const sendsTo = (name: string) =>
      roleStatements(template, functionNamed(name)).some(
        (statement) =>
          [statement.Action].flat().includes('sqs:SendMessage') &&
          JSON.stringify(statement.Resource).includes(deadlinesId),
      );

    // Assess
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [deadlinesId, 'Arn'] },
      FunctionName: { Ref: Match.stringLikeRegexp('^PipelineBatchLaneWatcher') },
      BatchSize: 1,
    });
    expect(queues[deadlinesId]?.Properties).toMatchObject({
      RedrivePolicy: { maxReceiveCount: 5 },
      SqsManagedSseEnabled: true,
    });
    for (const name of ['enqueue', 'batch'])
      expect(functionNamed(name).Properties.Environment.Variables.DEADLINE_QUEUE_URL).toEqual({
        Ref: deadlinesId,
      });
    expect(['enqueue', 'batch', 'worker', 'finalizer', 'sweeper'].filter(sendsTo)).toEqual([
      'enqueue',
      'batch',
    ]);
  });
});

describe('the ledger', () => {
  it('is on demand, with point-in-time recovery, TTL, the active-jobs index and the recent-jobs index', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      GlobalSecondaryIndexes: [
        Match.objectLike({ IndexName: 'active-jobs', Projection: { ProjectionType: 'KEYS_ONLY' } }),
        {
          IndexName: 'recent-jobs',
          KeySchema: [
            { AttributeName: 'jobList', KeyType: 'HASH' },
            { AttributeName: 'createdAt', KeyType: 'RANGE' },
          ],
          // The input's bucket and key, to find a job by its S3 URI without reading every job item.
          Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['bucket', 'key'] },
        },
      ],
    });
  });
});

describe('job end notifications', () => {
  it('send each end of a job, as a line a person reads, to a topic the address is subscribed to', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'data-team@example.com',
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['bedrock-batch-pipeline'],
        'detail-type': [
          'Batch Job Completed',
          'Batch Job Canceled',
          'Batch Job Superseded',
          'Batch Job Failed',
        ],
      },
      Targets: [
        Match.objectLike({
          Arn: { Ref: Match.stringLikeRegexp('NotificationsJobEnds') },
          InputTransformer: Match.objectLike({
            InputPathsMap: Match.objectLike({
              'detail-jobId': '$.detail.jobId',
              'detail-status': '$.detail.status',
            }),
            InputTemplate: Match.stringLikeRegexp(
              'job <detail-jobId> of <detail-input> ended <detail-status>',
            ),
          }),
        }),
      ],
    });
    // EventBridge may publish to it, over TLS only.
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'sns:Publish', Principal: { Service: 'events.amazonaws.com' } }),
        ]),
      }),
    });
  });
});

describe('alarms and dashboard', () => {
  it.each([
    ['the DLQ', 'ApproximateNumberOfMessagesVisible', 1, /bedrock-batch redrive/],
    // 100,000 typical records at 11.1 a second drain in 9,000 s; the alarm allows half as long again.
    ['the oldest record', 'ApproximateAgeOfOldestMessage', 13_500, /TOKENS_PER_MINUTE/],
    ['sustained throttling', 'BedrockThrottles', 10, /another application shares the quota/],
    ['stuck jobs', 'StuckJobs', 1, /bedrock-batch status/],
    ['the finalize DLQ', 'ApproximateNumberOfMessagesVisible', 1, /failed to finalize on every try/],
    ['the enqueue-failures queue', 'ApproximateNumberOfMessagesVisible', 1, /could not be read on any retry/],
    ['failed batch jobs', 'BatchJobsFailed', 1, /its records ran on demand/],
  ])('alarm on %s, saying what to do, to the alarm topic', (_case, metricName, threshold, description) => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: metricName,
      Threshold: threshold,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmDescription: Match.stringLikeRegexp(description.source),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('Alarms') }],
    });
  });

  it('have no Message Batches API alarm or graph when the stack serves no API', () => {
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(JSON.stringify(dashboard?.Properties?.DashboardBody)).not.toContain('Message Batches API');
    expect(
      template.findResources('AWS::CloudWatch::Alarm', { Properties: { Namespace: 'AWS/ApiGateway' } }),
    ).toEqual({});
  });

  it('alarm on the worker error rate', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([Match.objectLike({ Expression: '100 * errors / MAX([invocations, 1])' })]),
      Threshold: 5,
    });
  });

  it('mail the alarm address and draw a dashboard', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it("draw each model's prompt-cache hit rate from the worker's hit and miss counts, and its saving", () => {
    // Act
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties?.DashboardBody).replaceAll('\\', '');

    // Assess
    expect(body).toContain('Prompt cache: hit rate (%) and saving (USD) per model');
    expect(body).toContain('100 * hits0 / MAX([hits0 + misses0, 1])');
    for (const metric of ['CacheHitRecords', 'CacheMissRecords', 'CacheSavingUsd'])
      expect(body).toMatch(new RegExp(`"${metric}","model","global[^"]+","service","worker"`));
  });

  it('draw the work each record costs: receives, Bedrock calls and records sent back, against records done', () => {
    // Act
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties?.DashboardBody).replaceAll('\\', '');

    // Assess
    expect(body).toContain('Work per record: receives, Bedrock calls, records sent back to wait');
    for (const metric of ['RecordsReceived', 'BedrockCalls', 'RecordsSentBackToWait', 'RecordsSucceeded'])
      expect(body).toMatch(new RegExp(`"${metric}","service","worker"`));
  });

  it('draw the records and output tokens of every quota pool the worker may spread over', () => {
    // Act
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties?.DashboardBody).replaceAll('\\', '');

    // Assess
    expect(body).toContain('Records and output tokens per quota pool');
    for (const metric of ['PoolRecords', 'PoolOutputTokens'])
      expect(body).toMatch(new RegExp(`"${metric}","pool","us-west-2#global[^"]+","service","worker"`));
  });

  it('publish the outputs the CLI reads', () => {
    for (const output of ['BucketName', 'LedgerTableName', 'RecordQueueUrl', 'RecordDlqUrl'])
      template.hasOutput(output, {});
  });
});

describe('with useKms', () => {
  it('encrypts the bucket, queues and table with the pipeline key, which rotates', () => {
    // Prepare
    const stack = new PipelineStack(new App(), 'Kms', {
      pipeline: { bedrockRegion: 'us-west-2', useKms: true },
    });

    // Act
    const kms = Template.fromStack(stack);

    // Assess
    kms.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    kms.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() },
          }),
        ],
      },
    });
    kms.hasResourceProperties('AWS::SQS::Queue', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PipelineStorageKey'), 'Arn'] },
    });
    kms.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
    });
    kms.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'events.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ]),
      },
    });
  }, 120_000);
});

describe('with useKms, the key in every role', () => {
  const template = () =>
    Template.fromStack(
      new PipelineStack(new App(), 'KmsGrants', {
        pipeline: { bedrockRegion: 'us-west-2', useKms: true },
        env: { account: '123456789012', region: 'us-west-2' },
      }),
    );
  let kms: Template;
  beforeAll(() => {
    kms = template();
  }, 120_000);

  /** Each role's statements on the key: the services they go through and the actions, per role. */
  const keyUse = () =>
    Object.values(kms.findResources('AWS::IAM::Policy')).flatMap((policy) =>
      (policy.Properties.PolicyDocument.Statement as Array<PolicyStatement & { Condition?: unknown }>)
        .filter((statement) => [statement.Action].flat().some((action) => action.startsWith('kms:')))
        .map((statement) => ({
          role: (policy.Properties.Roles as Array<{ Ref: string }>)[0]?.Ref ?? '',
          actions: [statement.Action].flat(),
          via: (statement.Condition as { StringEquals?: Record<string, string> } | undefined)?.StringEquals?.[
            'kms:ViaService'
          ],
        })),
    );

  it('is used only through S3, DynamoDB and SQS in the stack region, never directly', () => {
    // Act
    const uses = keyUse();

    // Assess
    expect(uses.length).toBeGreaterThan(10);
    for (const use of uses) expect(use.via).toMatch(/^(s3|dynamodb|sqs)\.us-west-2\.amazonaws\.com$/);
  });

  it('is granted for what each role does: decrypt to read, a data key to write, nothing more', () => {
    // Act
    const actions = new Set(keyUse().flatMap((use) => use.actions));
    const finalizer = keyUse().filter((use) => use.role === roleOf(functionNamedIn(kms, 'finalizer')));

    // Assess
    expect([...actions].sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(finalizer).toContainEqual({
      role: expect.any(String),
      actions: ['kms:Decrypt'],
      via: 'sqs.us-west-2.amazonaws.com',
    });
    expect(finalizer).toContainEqual({
      role: expect.any(String),
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      via: 's3.us-west-2.amazonaws.com',
    });
  });
});

describe('a deployment over several quota pools', () => {
  const props = {
    bedrockRegion: 'us-west-2',
    additionalBedrockRegions: ['us-east-1'],
    additionalEndpoints: ['regional'],
    defaultModel: 'haiku-4.5',
  } as const;

  it('tells the functions the endpoint kinds and regions, and allows each pool’s model id', () => {
    // Act
    const environment = bedrockEnvironment(pipelineSettings(props));

    // Assess
    expect(environment).toMatchObject({
      BEDROCK_REGION: 'us-west-2',
      BEDROCK_REGIONS: 'us-west-2,us-east-1',
      BEDROCK_ENDPOINT: 'global',
      BEDROCK_ENDPOINTS: 'global,regional',
      ALLOWED_MODEL_IDS:
        'global.anthropic.claude-haiku-4-5-20251001-v1:0,us.anthropic.claude-haiku-4-5-20251001-v1:0',
    });
  });

  it('lets the worker call each pool’s profile from its own region, and no other', () => {
    // Prepare
    const settings = pipelineSettings(props);
    const stack = new Stack(new App(), 'Pools', { env: { account: '123456789012', region: 'us-west-2' } });

    // Act
    const profiles = bedrockInvokeStatements(stack, settings.poolModels)
      .map((statement) => JSON.stringify(stack.resolve(statement.toStatementJson())))
      .flatMap((json) => [
        ...json.matchAll(/:bedrock:([a-z0-9-]+):123456789012:inference-profile\/([^"]+)"/g),
      ])
      .map(([, region, id]) => `${region}#${id}`);

    // Assess
    expect(new Set(profiles)).toEqual(
      new Set(
        ['us-west-2', 'us-east-1'].flatMap((region) => [
          `${region}#global.anthropic.claude-haiku-4-5-20251001-v1:0`,
          `${region}#us.anthropic.claude-haiku-4-5-20251001-v1:0`,
        ]),
      ),
    );
  });

  it('alarms on each pool Bedrock throttles for 15 minutes, naming the pool, besides the sum', () => {
    // Act
    const pools = Template.fromStack(new PipelineStack(new App(), 'PoolAlarms', { pipeline: props }));
    const perPool = (stack: Template) =>
      Object.values(stack.findResources('AWS::CloudWatch::Alarm'))
        .filter((alarm) => alarm.Properties.MetricName === 'PoolThrottles')
        .map((alarm) => {
          const dimensions = alarm.Properties.Dimensions as Array<{ Name: string; Value: string }>;
          const pool = dimensions.find((dimension) => dimension.Name === 'pool')?.Value ?? '';
          const {
            Period: period,
            EvaluationPeriods: periods,
            AlarmDescription: description,
          } = alarm.Properties;
          return { pool, period, periods, names: String(description).includes(pool) };
        });

    // Assess: 2 regions x (global, us.) = 4 pools of Haiku 4.5, each with its alarm; the main stack's two models
    // in one region are two pools, with two alarms.
    const alarms = perPool(pools);
    expect(alarms).toHaveLength(4);
    expect(new Set(alarms.map((alarm) => alarm.pool))).toEqual(
      new Set(
        ['us-west-2', 'us-east-1'].flatMap((region) =>
          ['global', 'us'].map((prefix) => `${region}#${prefix}.anthropic.claude-haiku-4-5-20251001-v1:0`),
        ),
      ),
    );
    for (const alarm of alarms) expect(alarm).toMatchObject({ period: 300, periods: 3, names: true });
    expect(perPool(template).map((alarm) => alarm.pool)).toEqual([
      'us-west-2#global.anthropic.claude-opus-4-6-v1',
      'us-west-2#global.anthropic.claude-haiku-4-5-20251001-v1:0',
    ]);
    pools.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'BedrockThrottles' });
  }, 120_000);

  it('sizes the worker for every pool of the default model together', () => {
    // Act
    const spread = pipelineSettings(props).worker.concurrency;
    const single = pipelineSettings({ bedrockRegion: 'us-west-2', defaultModel: 'haiku-4.5' }).worker
      .concurrency;

    // Assess
    expect(spread).toBeGreaterThan(single);
  });

  it('refuses a source region outside the home geography when no pool is global', () => {
    expect(() =>
      pipelineSettings({
        bedrockRegion: 'us-west-2',
        endpoint: 'regional',
        additionalBedrockRegions: ['eu-west-1'],
        defaultModel: 'haiku-4.5',
      }),
    ).toThrow(/additionalBedrockRegions: eu-west-1 is in EU, outside US/);
  });
});

describe('Bedrock IAM per endpoint', () => {
  const statementsFor = (model: string, endpoint: 'global' | 'regional' | 'in-region') => {
    const stack = new Stack(new App(), 'Iam', { env: { account: '123456789012', region: 'us-west-2' } });
    return bedrockInvokeStatements(stack, [resolveModel({ model, region: 'us-west-2', endpoint })]).map(
      (statement) => stack.resolve(statement.toStatementJson()),
    );
  };
  const arn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });
  const invoke = 'bedrock:InvokeModel';
  const countTokensOn = (model: string) => ({
    Action: 'bedrock:CountTokens',
    Effect: 'Allow',
    Resource: arn(`:bedrock:us-west-2::foundation-model/${model}`),
  });

  it('global: the profile, and the model in the source region and region-less, only through the profile', () => {
    const profile = arn(
      ':bedrock:us-west-2:123456789012:inference-profile/global.anthropic.claude-opus-4-6-v1',
    );
    expect(statementsFor('opus-4.6', 'global')).toEqual([
      countTokensOn('anthropic.claude-opus-4-6-v1'),
      { Action: invoke, Effect: 'Allow', Resource: profile },
      {
        Action: invoke,
        Effect: 'Allow',
        Resource: arn(':bedrock:us-west-2::foundation-model/anthropic.claude-opus-4-6-v1'),
        Condition: { StringEquals: { 'bedrock:InferenceProfileArn': profile } },
      },
      {
        Action: invoke,
        Effect: 'Allow',
        Resource: arn(':bedrock:::foundation-model/anthropic.claude-opus-4-6-v1'),
        Condition: {
          StringEquals: { 'bedrock:InferenceProfileArn': profile, 'aws:RequestedRegion': 'unspecified' },
        },
      },
    ]);
  });

  it('regional: the profile, and the model wherever the profile routes, only through the profile', () => {
    const profile = arn(
      ':bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0',
    );
    expect(statementsFor('haiku-4.5', 'regional')).toEqual([
      countTokensOn('anthropic.claude-haiku-4-5-20251001-v1:0'),
      { Action: invoke, Effect: 'Allow', Resource: profile },
      {
        Action: invoke,
        Effect: 'Allow',
        Resource: arn(':bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0'),
        Condition: { StringEquals: { 'bedrock:InferenceProfileArn': profile } },
      },
    ]);
  });

  it('in-region: the model in the region only', () => {
    const model = 'anthropic.claude-sonnet-4-5-20250929-v1:0';
    expect(statementsFor('sonnet-4.5', 'in-region')).toEqual([
      countTokensOn(model),
      { Action: invoke, Effect: 'Allow', Resource: arn(`:bedrock:us-west-2::foundation-model/${model}`) },
    ]);
  });

  it("reach the deployed worker's role, for every allowed model", () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: invoke,
            Condition: {
              StringEquals: {
                'bedrock:InferenceProfileArn': Match.objectLike({
                  'Fn::Join': [
                    '',
                    Match.arrayWith([
                      Match.stringLikeRegexp('inference-profile/global.anthropic.claude-haiku'),
                    ]),
                  ],
                }),
              },
            },
          }),
        ]),
      },
    });
  });
});

describe('pipeline props', () => {
  it.each<[string, BedrockBatchPipelineProps, RegExp]>([
    ['no region', { bedrockRegion: '' }, /bedrockRegion/],
    [
      'a model the region lacks',
      { bedrockRegion: 'ap-northeast-1', defaultModel: 'haiku-4.5' },
      /Claude Haiku 4\.5 is not available in JP/,
    ],
    [
      'an unknown model',
      { bedrockRegion: 'us-west-2', allowedModels: ['gpt-4'], defaultModel: 'gpt-4' },
      /Unknown model "gpt-4"/,
    ],
    [
      'a default outside the allowed models',
      { bedrockRegion: 'us-west-2', defaultModel: 'sonnet-4.5', allowedModels: ['haiku-4.5'] },
      /defaultModel sonnet-4\.5 must be one of allowedModels/,
    ],
    ['a bad endpoint', { bedrockRegion: 'us-west-2', endpoint: 'cross' as 'global' }, /endpoint/],
    ['a bad alarm address', { bedrockRegion: 'us-west-2', alarmEmail: 'oncall' }, /alarmEmail/],
    ['an unknown prop', { bedrockRegion: 'us-west-2', ...({ region: 'x' } as object) }, /Unrecognized key/],
    ['an unknown lane', { bedrockRegion: 'us-west-2', defaultLane: 'cheap' as 'auto' }, /defaultLane/],
    [
      'a deadline that is no duration',
      { bedrockRegion: 'us-west-2', defaultDeadline: 'soon' },
      /defaultDeadline: must be a duration/,
    ],
  ])('refuse %s', (_case, props, message) => {
    expect(() => pipelineSettings(props)).toThrow(ConfigurationError);
    expect(() => pipelineSettings(props)).toThrow(message);
  });

  it('keep the concurrency between 2 and 1,000', () => {
    expect(
      pipelineSettings({ bedrockRegion: 'us-west-2', tokensPerMinute: 1_000, largestFileRecords: 100 }).worker
        .concurrency,
    ).toBe(2);
    expect(
      pipelineSettings({
        bedrockRegion: 'us-west-2',
        tokensPerMinute: 900_000_000,
        typicalRecord: { inputTokens: 100, outputTokens: 40, latencySeconds: 5 },
      }).worker.concurrency,
    ).toBe(1_000);
  });

  it('size the workers for a large Haiku quota: 10,000,000 tokens a minute of 300-token records', () => {
    // 555.6 records a second x 2 s x 2 = 2,223 in flight = 112 batches of 20, and one waiting.
    const settings = pipelineSettings({
      bedrockRegion: 'us-west-2',
      defaultModel: 'haiku-4.5',
      tokensPerMinute: 10_000_000,
      typicalRecord: { inputTokens: 100, outputTokens: 40, latencySeconds: 2 },
    });
    expect(settings.worker.concurrency).toBe(113);
  });

  it('refuse a largest file the quota cannot drain before SQS drops its messages', () => {
    const props = { bedrockRegion: 'us-west-2', tokensPerMinute: 10_000, largestFileRecords: 10_000_000 };
    expect(() => pipelineSettings(props)).toThrow(/longer than SQS keeps a message/);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it.each(['global', 'regional', 'in-region'])(
    'finds nothing unacknowledged in the app (%s endpoint)',
    (endpoint) => {
      // Act
      const synth = () =>
        buildApp(
          new App({
            context: {
              bedrockRegion: 'us-west-2',
              endpoint,
              useKms: true,
              alarmEmail: 'oncall@example.com',
              notifyEmail: 'data-team@example.com',
              // The Message Batches API's HTTP API and function, checked too (on one of the three).
              ...(endpoint === 'regional' ? { messageBatchesApi: 'true' } : {}),
            },
          }),
        ).synth();

      // Assess
      expect(synth).not.toThrow();
    },
    120_000,
  );

  it("acknowledges X-Ray's `*` on its own statement only: a function's other `*` is still a finding", () => {
    // Prepare
    const app = new App();
    const stack = new Stack(app, 'Wildcard');
    const fn = new PipelineFunction(stack, 'Sweeper', {
      name: 'sweeper',
      timeout: Duration.minutes(1),
      environment: {},
    });
    fn.function.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

    // Act
    const synth = () => app.synth();

    // Assess
    expect(synth).toThrow(/Sweeper\/Role\/DefaultPolicy[\s\S]*AwsSolutions-IAM5\[Resource::\*\]/);
  });

  it("keeps X-Ray's statement alone in a policy of its own, which each traced function waits for", () => {
    // Act
    const tracing = Object.entries(
      template.findResources('AWS::IAM::Policy', {
        Properties: { PolicyName: Match.stringLikeRegexp('Tracing') },
      }),
    );
    const traced = template.findResources('AWS::Lambda::Function', {
      Properties: { TracingConfig: { Mode: 'Active' } },
    });

    // Assess
    expect(tracing.map(([, policy]) => policy.Properties.PolicyDocument.Statement)).toEqual(
      pipelineFunctions(template).map(() => [
        { Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Effect: 'Allow', Resource: '*' },
      ]),
    );
    for (const fn of pipelineFunctions(template)) {
      expect(Object.values(traced)).toContainEqual(fn);
      expect(fn.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/Tracing/)]));
    }
  });

  it('would fail the synth on a finding nobody acknowledged (the check above is live)', () => {
    // Prepare
    const app = new App();
    const stack = new Stack(app, 'Careless');
    new s3.Bucket(stack, 'Open', { enforceSSL: false });
    new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }).addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }),
    );
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

    // Act
    const synth = () => app.synth();

    // Assess
    expect(synth).toThrow();
  });
});
