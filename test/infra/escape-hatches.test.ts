import { App, Duration, RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import { BedrockBatchPipeline } from '../../infra/bedrock-batch-pipeline.ts';
import type { BedrockBatchPipelineProps } from '../../infra/bedrock-batch-pipeline-props.ts';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import { functionNamed, pipelineFunctions, roleStatements } from '../support/cdk-template.ts';
import { newCatalogModel } from '../support/factories.ts';

const TEAM_KEY_ARN = 'arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/** A team's stack with the pipeline in it, given what `bring` makes in the stack first. */
function teamStack(bring: (stack: Stack) => Omit<BedrockBatchPipelineProps, 'bedrockRegion'>, app?: App) {
  const stack = new Stack(app, 'Team', { env: { region: 'us-west-2', account: '123456789012' } });
  const pipeline = new BedrockBatchPipeline(stack, 'Batches', {
    bedrockRegion: 'us-west-2',
    ...bring(stack),
  });
  return { stack, pipeline, template: () => Template.fromStack(stack) };
}

/** What a statement's resources resolve to, as one string to match against. */
function resourcesOf(statements: ReadonlyArray<{ Resource: unknown }>): string {
  return JSON.stringify(statements.map((statement) => statement.Resource));
}

describe("BedrockBatchPipeline with the team's own bucket", () => {
  it('made in the same app: uses it, makes none of its own, and turns on its EventBridge delivery and work/ expiry', () => {
    // Prepare
    let teamBucket: s3.Bucket | undefined;
    const { stack, pipeline, template } = teamStack((scope) => {
      teamBucket = new s3.Bucket(scope, 'Prompts', { enforceSSL: true, versioned: true });
      // CDK's own types do not satisfy exactOptionalPropertyTypes (Bucket.isWebsite); the value is right.
      return { existingBucketObj: teamBucket as unknown as s3.IBucket, retentionDays: 9 };
    });

    // Act
    const synthesised = template();

    // Assess
    expect(pipeline.bucket).toBe(teamBucket);
    const bucketRef = stack.resolve(teamBucket?.bucketName);
    expect(Object.keys(synthesised.findResources('AWS::S3::Bucket'))).toEqual([bucketRef.Ref]);
    synthesised.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: bucketRef,
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
    synthesised.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Id: 'intermediate-results', Prefix: 'work/', ExpirationInDays: 9 })],
      },
    });
    synthesised.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: Match.objectLike({ detail: { bucket: { name: [bucketRef] } } }),
    });
  });

  it('imported with its key: the functions reach its prefixes, and its key only through S3', () => {
    // Prepare
    const { template } = teamStack((scope) => ({
      existingBucketObj: s3.Bucket.fromBucketAttributes(scope, 'Prompts', {
        bucketName: 'team-prompts',
        encryptionKey: kms.Key.fromKeyArn(scope, 'PromptsKey', TEAM_KEY_ARN),
      }),
    }));

    // Act
    const synthesised = template();
    const statements = roleStatements(synthesised, functionNamed(synthesised, 'worker'));

    // Assess
    expect(synthesised.findResources('AWS::S3::Bucket')).toEqual({});
    expect(resourcesOf(statements.filter((statement) => statement.Action === 's3:GetObject'))).toContain(
      ':s3:::team-prompts/inputs/*',
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: TEAM_KEY_ARN,
        Condition: { StringEquals: { 'kms:ViaService': 's3.us-west-2.amazonaws.com' } },
      }),
    );
  });

  it('imported, in a VPC of its own, leaves cdk-nag nothing unacknowledged', () => {
    // Prepare
    const app = new App();
    teamStack(
      (scope) => ({
        existingBucketObj: s3.Bucket.fromBucketName(scope, 'Prompts', 'team-prompts'),
        defaultLane: 'auto',
        functionProps: {
          vpc: ec2.Vpc.fromVpcAttributes(scope, 'Vpc', {
            vpcId: 'vpc-12345678',
            availabilityZones: ['us-west-2a', 'us-west-2b'],
            privateSubnetIds: ['subnet-11111111', 'subnet-22222222'],
          }),
        },
      }),
      app,
    );
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

    // Act
    const synth = () => app.synth();

    // Assess
    expect(synth).not.toThrow();
  }, 120_000);
});

describe('BedrockBatchPipeline props for what it makes', () => {
  it("shapes its bucket by the team's props, keeping the pipeline's encryption, delivery and expiry", () => {
    // Prepare
    const { template } = teamStack(() => ({
      useKms: true,
      bucketProps: {
        bucketName: 'team-prompts',
        removalPolicy: RemovalPolicy.DESTROY,
        lifecycleRules: [{ id: 'old-outputs', prefix: 'outputs/', expiration: Duration.days(90) }],
      },
    }));

    // Act
    const synthesised = template();

    // Assess
    const [bucket] = Object.values(
      synthesised.findResources('AWS::S3::Bucket', { Properties: { BucketName: 'team-prompts' } }),
    );
    expect(bucket?.DeletionPolicy).toBe('Delete');
    expect(bucket?.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0]).toMatchObject({
      ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms' },
    });
    expect(bucket?.Properties.NotificationConfiguration ?? {}).toEqual({});
    expect(bucket?.Properties.LifecycleConfiguration.Rules.map((rule: { Id: string }) => rule.Id)).toEqual([
      'intermediate-results',
      'old-versions',
      'old-outputs',
    ]);
    synthesised.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
  });

  it("names and protects its ledger table as the team asks, with the pipeline's keys", () => {
    // Prepare
    const { template } = teamStack(() => ({
      ledgerTableProps: { tableName: 'team-batch-ledger', deletionProtection: true },
    }));

    // Act
    const synthesised = template();

    // Assess
    synthesised.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'team-batch-ledger',
      DeletionProtectionEnabled: true,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  it('gives every function the props for all, and the worker its own over them', () => {
    // Prepare
    const { template } = teamStack(() => ({
      defaultLane: 'auto',
      functionProps: { memorySize: 512, ephemeralStorageSize: Size.mebibytes(1_024) },
      workerFunctionProps: { memorySize: 3_008 },
    }));

    // Act
    const synthesised = template();

    // Assess
    const memory = Object.fromEntries(
      pipelineFunctions(synthesised).map((fn) => [
        fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME,
        [fn.Properties.MemorySize, fn.Properties.EphemeralStorage?.Size, fn.Properties.Timeout],
      ]),
    );
    expect(memory).toEqual({
      enqueue: [512, 1_024, 900],
      worker: [3_008, 1_024, 300],
      finalizer: [512, 1_024, 900],
      sweeper: [512, 1_024, 60],
      batch: [512, 1_024, 900],
    });
  });
});

describe('BedrockBatchPipeline escape hatches refused', () => {
  const bucket = (stack: Stack) => s3.Bucket.fromBucketName(stack, 'Prompts', 'team-prompts');
  it.each<[string, (stack: Stack) => Omit<BedrockBatchPipelineProps, 'bedrockRegion'>, RegExp]>([
    [
      'a bucket brought and bucket props both',
      (stack) => ({ existingBucketObj: bucket(stack), bucketProps: { bucketName: 'x' } }),
      /bucketProps: give existingBucketObj or bucketProps, not both/,
    ],
    [
      'a bucket that is a name',
      () => ({ existingBucketObj: 'team-prompts' as never }),
      /existingBucketObj: must be an S3 bucket/,
    ],
    [
      "the bucket's encryption",
      () => ({ bucketProps: { encryption: s3.BucketEncryption.S3_MANAGED } as never }),
      /bucketProps\.encryption: cannot be set: the key is chosen by useKms or existingEncryptionKey/,
    ],
    [
      "the bucket's EventBridge delivery off",
      () => ({ bucketProps: { eventBridgeEnabled: false } as never }),
      /bucketProps\.eventBridgeEnabled: cannot be set: uploads start their jobs through EventBridge/,
    ],
    [
      "the ledger's keys",
      () => ({ ledgerTableProps: { partitionKey: { name: 'id' } } as never }),
      /ledgerTableProps\.partitionKey: cannot be set/,
    ],
    [
      "a function's timeout",
      () => ({ functionProps: { timeout: 60 } as never }),
      /functionProps\.timeout: cannot be set: the pipeline sets it \(what may be: memorySize, /,
    ],
    [
      'a worker with less memory than Lambda gives',
      () => ({ workerFunctionProps: { memorySize: 64 } }),
      /workerFunctionProps\.memorySize: must be a whole number of MB from 128 to 10240/,
    ],
  ])('refuses %s when the construct is created', (_case, bring, message) => {
    // Prepare
    const props = { bedrockRegion: 'us-west-2', ...bring(new Stack()) };

    // Act
    const create = () => new BedrockBatchPipeline(new Stack(), 'Bad', props);

    // Assess
    expect(create).toThrow(ConfigurationError);
    expect(create).toThrow(message);
  });
});

describe("BedrockBatchPipeline with the team's own catalog entries and model ids it does not list", () => {
  const haiku5 = newCatalogModel({ prices: {} });

  // One stack for the specs below: a model the team adds to the catalog, and one named by its Bedrock id only.
  let synthesised: ReturnType<ReturnType<typeof teamStack>['template']>;
  beforeAll(() => {
    synthesised = teamStack(() => ({
      defaultModel: 'haiku-5',
      allowedModels: ['haiku-5', 'opus-4.6', 'anthropic.claude-opus-5'],
      catalog: { models: [haiku5] },
      allowUnknownModels: true,
    })).template();
  }, 120_000);

  it('lets the worker call a model the built-in catalog lacks, and gives every function the entries', () => {
    // Act
    const worker = functionNamed(synthesised, 'worker');

    // Assess
    expect(resourcesOf(roleStatements(synthesised, worker))).toContain(
      ':bedrock:us-west-2:123456789012:inference-profile/global.anthropic.claude-haiku-5',
    );
    expect(worker.Properties.Environment.Variables).toMatchObject({ BEDROCK_MODEL: 'haiku-5' });
    for (const fn of pipelineFunctions(synthesised))
      expect(JSON.parse(fn.Properties.Environment.Variables.CATALOG_MODELS)).toEqual({ models: [haiku5] });
  });

  it('lets the worker call an id the catalog does not list when it is allowed, and no other, telling every function', () => {
    // Act
    const worker = functionNamed(synthesised, 'worker');

    // Assess
    const resources = resourcesOf(roleStatements(synthesised, worker));
    expect(resources).toContain(
      ':bedrock:us-west-2:123456789012:inference-profile/global.anthropic.claude-opus-5',
    );
    expect(resources).toContain('::foundation-model/anthropic.claude-opus-5');
    expect(resources).not.toMatch(/anthropic\.claude-\*|anthropic\.\*/);
    expect(worker.Properties.Environment.Variables.ALLOWED_MODEL_IDS).toContain(
      'global.anthropic.claude-opus-5',
    );
    for (const fn of pipelineFunctions(synthesised))
      expect(fn.Properties.Environment.Variables.ALLOW_UNKNOWN_MODELS).toBe('true');
  });

  it('refuses an id the catalog does not list unless unknown ids are allowed, saying how to allow them', () => {
    // Act
    const create = () => teamStack(() => ({ defaultModel: 'anthropic.claude-opus-5' }));

    // Assess
    expect(create).toThrow(ConfigurationError);
    expect(create).toThrow(/model anthropic\.claude-opus-5: Unknown model .*allowUnknownModels/s);
  });

  it.each<[string, BedrockBatchPipelineProps['catalog'], RegExp]>([
    [
      'an entry that names no id',
      { models: [{ ...haiku5, bedrockId: undefined }] },
      /catalog: The catalog in the catalog prop is invalid: models\[0\] \(key "haiku-5", a new model needs every field\)/,
    ],
    [
      'more entries than a function can be given',
      {
        models: Array.from({ length: 8 }, (_, index) => ({
          ...haiku5,
          key: `m${index}`,
          aliases: [],
          anthropicNames: [],
          bedrockId: `anthropic.m${index}`,
        })),
      },
      /catalog: \d+ bytes as JSON, more than the 2500/,
    ],
  ])('refuses %s', (_case, catalog, message) => {
    // Act
    const create = () => teamStack(() => ({ ...(catalog === undefined ? {} : { catalog }) }));

    // Assess
    expect(create).toThrow(message);
  });
});

describe('the CDK app', () => {
  it('takes the catalog as context, as JSON, like every other prop', () => {
    // Prepare
    const catalog = {
      models: [
        {
          key: 'sonnet-4.6',
          prices: {
            standard: { input: 3, output: 15, cacheWrite: 3.75, cacheWrite1h: 6, cacheRead: 0.3 },
            longContext: { input: 6, output: 22.5, cacheWrite: 7.5, cacheWrite1h: 12, cacheRead: 0.6 },
          },
        },
      ],
    };
    const app = buildApp(
      new App({
        context: { bedrockRegion: 'us-west-2', defaultModel: 'sonnet-4.6', catalog: JSON.stringify(catalog) },
      }),
    );

    // Act
    const template = Template.fromStack(app.node.findChild('BedrockBatchPipeline') as Stack);

    // Assess
    expect(
      JSON.parse(functionNamed(template, 'worker').Properties.Environment.Variables.CATALOG_MODELS),
    ).toEqual(catalog);
  }, 120_000);
});

describe("BedrockBatchPipeline and Lambda's 4 KB of settings", () => {
  it('refuses, when it is created, settings a function could not hold: a long catalog beside many models', () => {
    // Prepare: two added models with long names, and every model allowed through every kind of endpoint.
    const padded = (key: string) =>
      newCatalogModel({
        key,
        bedrockId: `anthropic.claude-${key}`,
        aliases: [key],
        anthropicNames: [`claude-${key}`],
        displayName: `Claude ${key}, ${'as the team names it in its reports, '.repeat(18)}`,
      });
    const catalog = { models: [padded('haiku-5'), padded('sonnet-5')] };
    const allowedModels = [...defaultCatalogKeys(), 'haiku-5', 'sonnet-5'];

    // Act
    const create = () =>
      teamStack(() => ({ catalog, allowedModels, additionalEndpoints: ['regional', 'in-region'] }));

    // Assess
    expect(create).toThrow(ConfigurationError);
    expect(create).toThrow(
      /the \w+ function's settings would take up to \d+ bytes, more than the 4096 Lambda holds: give fewer fields in catalog, or fewer allowedModels/,
    );
  });
});

function defaultCatalogKeys(): string[] {
  return defaultCatalog.models.map((model) => model.key);
}
