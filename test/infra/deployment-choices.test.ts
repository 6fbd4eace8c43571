import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { PipelineStack } from '../../infra/pipeline-stack.ts';
import { STACK_OUTPUTS } from '../../shared/stack-outputs.ts';
import { functionNamed, roleStatements } from '../support/cdk-template.ts';

let template: Template;
beforeAll(() => {
  // One synthesis of a stack with its optional parts and other file defaults, for every spec below (cdk-nag
  // checks the API with the app's, in pipeline-stack.test.ts).
  const stack = new PipelineStack(new App(), 'Batches', {
    env: { region: 'us-west-2', account: '123456789012' },
    pipeline: {
      bedrockRegion: 'us-west-2',
      messageBatchesApi: { rateLimit: 20, burstLimit: 40 },
      defaultLane: 'auto',
      defaultDeadline: '36h',
      promptCache: 'off',
      serviceTier: 'flex',
      tokensPerMinute: 1_000_000,
    },
  });
  template = Template.fromStack(stack);
}, 120_000);

describe('the Message Batches API of the construct (messageBatchesApi prop)', () => {
  it("routes Anthropic's paths to its function, every route behind IAM authorization", () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    for (const routeKey of ['ANY /v1/messages/batches', 'ANY /v1/messages/batches/{proxy+}'])
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey,
        AuthorizationType: 'AWS_IAM',
      });
    template.resourceCountIs('AWS::ApiGatewayV2::Route', 2);
  });

  it('throttles its stage as the prop says, and logs every access', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
    });
  });

  it("lets its function work on batches' objects and the ledger's jobs, and nothing else of the bucket", () => {
    const fn = functionNamed(template, 'message-batches');
    const statements = roleStatements(template, fn);
    const s3 = JSON.stringify(
      statements.filter((statement) => JSON.stringify(statement.Action).includes('s3:')),
    );
    expect(s3).toContain('/message-batches/*');
    expect(s3).toContain('/inputs/message-batches/*');
    expect(s3).toContain('/outputs/message-batches/*');
    expect(s3).not.toMatch(/"\/inputs\/\*"|"\/outputs\/\*"|"\/work\/\*"/);
    expect(s3).toContain('s3:DeleteObject');
    expect(fn.Properties.Environment.Variables).toMatchObject({ MESSAGE_BATCHES_SHARED: 'false' });
  });

  it('keeps a batch 29 days, as Anthropic keeps results: its record, requests and results then expire', () => {
    const [bucket] = Object.values(
      template.findResources('AWS::S3::Bucket', {
        Properties: { VersioningConfiguration: Match.anyValue() },
      }),
    );
    const rules = bucket?.Properties.LifecycleConfiguration.Rules as Array<{
      Prefix?: string;
      ExpirationInDays?: number;
    }>;
    for (const prefix of ['message-batches/', 'inputs/message-batches/', 'outputs/message-batches/'])
      expect(rules).toContainEqual(expect.objectContaining({ Prefix: prefix, ExpirationInDays: 29 }));
  });

  it("alarms on the API's 5xx answers, saying where to look, and draws its requests, errors and latency", () => {
    // Act
    const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    const body = JSON.stringify(dashboard?.Properties?.DashboardBody).replaceAll('\\', '');

    // Assess
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: Match.anyValue() }],
      Threshold: 5,
      AlarmDescription: Match.stringLikeRegexp('message batches request failed'),
    });
    expect(body).toContain('Message Batches API: requests, 4xx, 5xx, latency (ms)');
    for (const metric of ['MessageBatchRequests', 'MessageBatchFailures'])
      expect(body).toMatch(new RegExp(`"${metric}","service","messageBatches"`));
    for (const metric of ['4xx', '5xx', 'Latency'])
      expect(body).toMatch(new RegExp(`"AWS/ApiGateway","${metric}","ApiId"`));
  });

  it('publishes its base URL as a stack output', () => {
    template.hasOutput(STACK_OUTPUTS.messageBatchesApiUrl, { Value: Match.anyValue() });
  });
});

describe('the file defaults a deployment chooses', () => {
  it("gives the enqueue function the deployment's lane, deadline, caching and service tier for files that choose none, and the quota", () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'enqueue',
          DEFAULT_LANE: 'auto',
          DEFAULT_DEADLINE: '36h',
          DEFAULT_CACHE: 'off',
          DEFAULT_TIER: 'flex',
          TOKENS_PER_MINUTE: '1000000',
        }),
      },
    });
  });
});
