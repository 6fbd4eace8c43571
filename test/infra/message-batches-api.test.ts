import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { PipelineStack } from '../../infra/pipeline-stack.ts';
import { STACK_OUTPUTS } from '../../shared/stack-outputs.ts';
import { functionNamed, roleStatements } from '../support/cdk-template.ts';

let template: Template;
let synthesis: () => void;
beforeAll(() => {
  // One synthesis, with cdk-nag's AWS Solutions checks, for every spec below.
  const app = new App();
  const stack = new PipelineStack(app, 'Batches', {
    env: { region: 'us-west-2', account: '123456789012' },
    pipeline: { bedrockRegion: 'us-west-2', messageBatchesApi: { rateLimit: 20, burstLimit: 40 } },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let synthesised: ReturnType<App['synth']> | undefined;
  synthesis = () => {
    synthesised ??= app.synth();
  };
  synthesis();
  template = Template.fromJSON(synthesised?.getStackByName(stack.stackName).template ?? {});
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

  it('publishes its base URL as a stack output', () => {
    template.hasOutput(STACK_OUTPUTS.messageBatchesApiUrl, { Value: Match.anyValue() });
  });

  it("leaves cdk-nag's AWS Solutions checks nothing unacknowledged", () => {
    expect(synthesis).not.toThrow();
  });
});
