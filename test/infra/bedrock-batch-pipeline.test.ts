import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { beforeAll, describe, expect, it } from 'vitest';
import { BedrockBatchPipeline } from '../../infra/bedrock-batch-pipeline.ts';
import type { BedrockBatchPipelineProps } from '../../infra/bedrock-batch-pipeline-props.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import { functionNamed, pipelineFunctions, roleOf, roleStatements } from '../support/cdk-template.ts';

/** A consumer's stack with the pipeline in it, and a rule of theirs on the completion event. */
function consumerStack(props: BedrockBatchPipelineProps = { bedrockRegion: 'us-west-2' }) {
  const stack = new Stack(undefined, 'Consumer', { env: { region: 'us-west-2', account: '123456789012' } });
  const pipeline = new BedrockBatchPipeline(stack, 'Batches', props);
  const topic = new sns.Topic(stack, 'Done', { enforceSSL: true });
  new events.Rule(stack, 'OnDone', {
    eventPattern: pipeline.completionEventPattern,
    targets: [new targets.SnsTopic(topic)],
  });
  return { stack, pipeline };
}

let built: ReturnType<typeof consumerStack>;
let template: Template;
beforeAll(() => {
  built = consumerStack({
    bedrockRegion: 'us-west-2',
    promptCache: 'off',
    defaultLane: 'auto',
    maxErrorRate: 0.1,
    maxDailyCost: 250,
  });
  template = Template.fromStack(built.stack);
}, 120_000);

describe('BedrockBatchPipeline in a consumer stack', () => {
  it('exposes the bucket it starts jobs from, with EventBridge delivery on', () => {
    expect(built.stack.resolve(built.pipeline.bucket.bucketName)).toEqual({
      Ref: expect.stringMatching(/^BatchesStorageBucket/),
    });
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: built.stack.resolve(built.pipeline.bucket.bucketName),
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
  });

  it("lets the consumer's own rule match the completion event", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['bedrock-batch-pipeline'], 'detail-type': ['Batch Job Completed'] },
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('^Done') } })],
    });
    expect(built.pipeline.failureEventPattern).toEqual({
      source: ['bedrock-batch-pipeline'],
      detailType: ['Batch Job Failed'],
    });
    // No notification topic unless one is asked for.
    expect(built.pipeline.notificationTopic).toBeUndefined();
    expect(
      Object.keys(template.findResources('AWS::Events::Rule')).filter((id) => id.includes('Notifications')),
    ).toEqual([]);
    expect(built.pipeline.endEventPattern).toEqual({
      source: ['bedrock-batch-pipeline'],
      detailType: ['Batch Job Completed', 'Batch Job Canceled', 'Batch Job Superseded', 'Batch Job Failed'],
    });
  });

  it('exposes the table, queues and functions it deploys', () => {
    const { pipeline, stack } = built;
    const logicalIdOf = (token: string) => (stack.resolve(token) as { Ref: string }).Ref;
    const tables = template.findResources('AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toContain(logicalIdOf(pipeline.ledgerTable.tableName));
    const functions = template.findResources('AWS::Lambda::Function', {
      Properties: { Runtime: 'nodejs22.x', Architectures: ['arm64'] },
    });
    expect(Object.keys(functions).sort()).toEqual(
      Object.values(pipeline.functions)
        .map((fn) => logicalIdOf(fn.functionName))
        .sort(),
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: stack.resolve(pipeline.recordQueue.queueArn),
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: Match.absent(),
      RedrivePolicy: { deadLetterTargetArn: stack.resolve(pipeline.recordDeadLetterQueue.queueArn) },
    });
  });

  it('passes its props to the functions', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          DEFAULT_CACHE: 'off',
          DEFAULT_LANE: 'auto',
          MAX_ERROR_RATE: '0.1',
          MAX_DECOMPRESSED_BYTES: String(1024 ** 3),
          BEDROCK_REGION: 'us-west-2',
        }),
      },
    });
  });

  it.each([
    ['worker', 'starts the calls and counts their cost', { MAX_DAILY_COST_USD: '250' }],
    ['batch', "counts collected batch records' cost", { MAX_DAILY_COST_USD: '250' }],
    ['enqueue', 'counts nothing that costs', {}],
    ['finalizer', 'counts nothing', {}],
  ])(
    'gives the daily spending cap to the functions that count cost: the %s %s',
    (service, _why, expected) => {
      const variables = functionNamed(template, service).Properties.Environment.Variables;
      expect(
        Object.hasOwn(variables, 'MAX_DAILY_COST_USD')
          ? { MAX_DAILY_COST_USD: variables.MAX_DAILY_COST_USD }
          : {},
      ).toEqual(expected);
    },
  );

  it.each(['worker', 'finalizer'])(
    "reads each pool's quota from Service Quotas when none is given: the %s may list quotas, nothing more",
    (service) => {
      // Prepare: the function's policies.
      const fn = functionNamed(template, service);
      const statements = roleStatements(template, fn);

      // Assess
      expect(fn.Properties.Environment.Variables).toMatchObject({
        READ_SERVICE_QUOTAS: 'true',
        QUOTA_SHARE: '1',
        BEDROCK_REGION: 'us-west-2',
      });
      expect(statements.filter((statement) => String(statement.Action).startsWith('servicequotas:'))).toEqual(
        [expect.objectContaining({ Action: 'servicequotas:ListServiceQuotas', Resource: '*' })],
      );
    },
  );

  it('gives each function a role that writes its own log group and no other', () => {
    // Prepare
    const functions = pipelineFunctions(template);
    const roles = template.findResources('AWS::IAM::Role');

    // Assess
    expect(functions.length).toBeGreaterThan(0);
    for (const fn of functions) {
      const logGroup = (fn.Properties.LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(roles[roleOf(fn)]?.Properties.ManagedPolicyArns).toBeUndefined();
      const logStatements = roleStatements(template, fn).filter((statement) =>
        JSON.stringify(statement.Action).includes('logs:'),
      );
      expect(logStatements).toEqual([
        {
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Effect: 'Allow',
          Resource: { 'Fn::GetAtt': [logGroup, 'Arn'] },
        },
      ]);
    }
  });

  it('keeps two pipelines apart in one stack', () => {
    // Prepare
    const stack = new Stack(undefined, 'Two', { env: { region: 'us-west-2', account: '123456789012' } });

    // Act
    new BedrockBatchPipeline(stack, 'Tickets', { bedrockRegion: 'us-west-2' });
    new BedrockBatchPipeline(stack, 'Contracts', { bedrockRegion: 'us-west-2', defaultModel: 'haiku-4.5' });

    // Assess
    const twice = Template.fromStack(stack);
    twice.resourceCountIs('AWS::S3::Bucket', 4);
    twice.resourceCountIs('AWS::DynamoDB::Table', 2);
    expect(
      Object.keys(twice.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } })),
    ).toHaveLength(10);
  }, 120_000);
});

describe('BedrockBatchPipeline props', () => {
  it.each<[string, BedrockBatchPipelineProps, RegExp]>([
    ['no region', { bedrockRegion: '' }, /bedrockRegion/],
    [
      'a model the region lacks',
      { bedrockRegion: 'ap-northeast-1', defaultModel: 'haiku-4.5' },
      /not available in JP/,
    ],
    [
      'a worker timeout under 30 s',
      { bedrockRegion: 'us-west-2', workerTimeoutSeconds: 10 },
      /workerTimeoutSeconds/,
    ],
    ['a batch size over 100', { bedrockRegion: 'us-west-2', workerBatchSize: 500 }, /workerBatchSize/],
    [
      'an alarm topic that is no SNS ARN',
      { bedrockRegion: 'us-west-2', alarmTopicArn: 'topic' },
      /alarmTopicArn/,
    ],
    [
      'a caching choice that is neither auto nor off',
      { bedrockRegion: 'us-west-2', promptCache: 'on' as 'off' },
      /promptCache/,
    ],
    ['an error rate over 1', { bedrockRegion: 'us-west-2', maxErrorRate: 1.5 }, /maxErrorRate/],
    [
      'a service tier Bedrock does not have',
      { bedrockRegion: 'us-west-2', serviceTier: 'gold' as 'flex' },
      /serviceTier/,
    ],
    ['a daily spending cap of nothing', { bedrockRegion: 'us-west-2', maxDailyCost: 0 }, /maxDailyCost/],
    [
      'a key that is no KMS key',
      { bedrockRegion: 'us-west-2', existingEncryptionKey: 'alias/mine' as unknown as kms.IKey },
      /existingEncryptionKey: must be a KMS key/,
    ],
  ])('refuse %s when the construct is created', (_case, props, message) => {
    // Prepare
    const stack = new Stack();

    // Act
    const create = () => new BedrockBatchPipeline(stack, 'Bad', props);

    // Assess
    expect(create).toThrow(ConfigurationError);
    expect(create).toThrow(message);
  });
});

describe("BedrockBatchPipeline with the team's own KMS key", () => {
  it('encrypts the bucket, the table and every queue with it, makes no key of its own, and lets EventBridge use it', () => {
    // Prepare
    const stack = new Stack(undefined, 'OwnKey', { env: { region: 'us-west-2', account: '123456789012' } });
    const key = new kms.Key(stack, 'TeamKey', { enableKeyRotation: true });

    // Act
    new BedrockBatchPipeline(stack, 'Batches', { bedrockRegion: 'us-west-2', existingEncryptionKey: key });
    const template = Template.fromStack(stack);

    // Assess
    const keyArn = { 'Fn::GetAtt': [stack.resolve((key.node.defaultChild as kms.CfnKey).logicalId), 'Arn'] };
    expect(Object.keys(template.findResources('AWS::KMS::Key'))).toHaveLength(1);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: keyArn },
          }),
        ],
      },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: Match.objectLike({ SSEType: 'KMS', KMSMasterKeyId: keyArn }),
    });
    const queues = Object.values(template.findResources('AWS::SQS::Queue'));
    expect(queues.length).toBeGreaterThan(4);
    for (const queue of queues) expect(queue.Properties.KmsMasterKeyId).toEqual(keyArn);
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([Match.objectLike({ Principal: { Service: 'events.amazonaws.com' } })]),
      },
    });
  }, 120_000);
});
