import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { BedrockBatchPipelineProps } from './bedrock-batch-pipeline-props.ts';
import { PipelineStack } from './pipeline-stack.ts';

/**
 * `npx cdk synth` / `npx cdk deploy -c bedrockRegion=us-west-2 [-c defaultModel=sonnet-4.5] ...`.
 * Every prop can be given as context (-c name=value, lists as JSON); they are validated before synthesis.
 */
export function buildApp(app: App = new App()): App {
  const context = (name: string): unknown => {
    const value = app.node.tryGetContext(name);
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  };
  const names = [
    'bedrockRegion',
    'defaultModel',
    'allowedModels',
    'endpoint',
    'tokensPerMinute',
    'defaultMaxTokens',
    'alarmEmail',
    'alarmTopicArn',
    'notifyEmail',
    'notifyTopicArn',
    'useKms',
    'workerTimeoutSeconds',
    'workerBatchSize',
    'typicalRecord',
    'largestFileRecords',
    'stuckAfterMinutes',
    'retentionDays',
    'defaultLane',
    'defaultDeadline',
    'promptCache',
    'serviceTier',
    'maxErrorRate',
    'maxDecompressedBytes',
    'maxDailyCost',
    'catalog',
    'allowUnknownModels',
    'messageBatchesApi',
  ] as const satisfies ReadonlyArray<keyof BedrockBatchPipelineProps>;
  const pipeline = Object.fromEntries(
    names.map((name) => [name, context(name)]).filter(([, value]) => value !== undefined),
  );
  const region = (pipeline.bedrockRegion as string | undefined) ?? process.env.CDK_DEFAULT_REGION;
  new PipelineStack(
    app,
    (app.node.tryGetContext('stackName') as string | undefined) ?? 'BedrockBatchPipeline',
    {
      pipeline: { bedrockRegion: region, ...pipeline } as BedrockBatchPipelineProps,
      ...(region === undefined
        ? {}
        : {
            env: {
              region,
              ...(process.env.CDK_DEFAULT_ACCOUNT === undefined
                ? {}
                : { account: process.env.CDK_DEFAULT_ACCOUNT }),
            },
          }),
    },
  );
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

if (process.argv[1]?.endsWith('infra/app.ts')) buildApp().synth();
