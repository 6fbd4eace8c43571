import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import type { ResolvedModel } from '../../shared/models/resolve-model.ts';
import { acknowledge, type PipelineFunction } from './pipeline-function.ts';

const INVOKE = ['bedrock:InvokeModel'];
/** CountTokens takes the foundation model id in the calling region; it runs nothing and spends no quota. */
const COUNT = ['bedrock:CountTokens'];

/**
 * The least IAM that lets a function call exactly these models (AWS's guidance on IAM for inference profiles):
 * - in-region: the foundation model in the region;
 * - geographic profile (us., eu., ...): the profile, and the foundation model in whichever region the profile
 *   routes to (the profile decides, and may add regions), only through that profile;
 * - global profile: the profile, the foundation model in the source region and the region-less foundation
 *   model ARN (aws:RequestedRegion "unspecified"), only through that profile.
 * "Only through the profile" is the bedrock:InferenceProfileArn condition of AWS's own examples: the role
 * cannot call the model directly, around the profile. CountTokens is allowed on the source region's model.
 */
export function bedrockInvokeStatements(
  scope: IConstruct,
  models: readonly ResolvedModel[],
  options: { readonly countTokens?: boolean } = {},
): iam.PolicyStatement[] {
  const { account, partition } = Stack.of(scope);
  const statements: iam.PolicyStatement[] = [];
  for (const { endpoint, model, region, modelId } of models) {
    const foundationModel = (inRegion: string) =>
      `arn:${partition}:bedrock:${inRegion}::foundation-model/${model.bedrockId}`;
    if (options.countTokens !== false)
      statements.push(new iam.PolicyStatement({ actions: COUNT, resources: [foundationModel(region)] }));
    if (endpoint === 'in-region') {
      statements.push(new iam.PolicyStatement({ actions: INVOKE, resources: [foundationModel(region)] }));
      continue;
    }
    const profile = `arn:${partition}:bedrock:${region}:${account}:inference-profile/${modelId}`;
    const throughProfile = { 'bedrock:InferenceProfileArn': profile };
    statements.push(new iam.PolicyStatement({ actions: INVOKE, resources: [profile] }));
    if (endpoint === 'regional') {
      statements.push(
        new iam.PolicyStatement({
          actions: INVOKE,
          resources: [foundationModel('*')],
          conditions: { StringEquals: throughProfile },
        }),
      );
      continue;
    }
    statements.push(
      new iam.PolicyStatement({
        actions: INVOKE,
        resources: [foundationModel(region)],
        conditions: { StringEquals: throughProfile },
      }),
      new iam.PolicyStatement({
        actions: INVOKE,
        resources: [`arn:${partition}:bedrock:::foundation-model/${model.bedrockId}`],
        conditions: { StringEquals: { ...throughProfile, 'aws:RequestedRegion': 'unspecified' } },
      }),
    );
  }
  return statements;
}

/** The ARN of what a model is called through: its inference profile, or the foundation model in the region. */
export function invokedModelArn(
  scope: IConstruct,
  { endpoint, model, region, modelId }: ResolvedModel,
): string {
  const { account, partition } = Stack.of(scope);
  return endpoint === 'in-region'
    ? `arn:${partition}:bedrock:${region}::foundation-model/${model.bedrockId}`
    : `arn:${partition}:bedrock:${region}:${account}:inference-profile/${modelId}`;
}

/** Lets a function read the account's applied quotas (each pool's tokens a minute and a day), nothing more. */
export function grantQuotaReading(fn: PipelineFunction): void {
  fn.function.addToRolePolicy(
    new iam.PolicyStatement({ actions: ['servicequotas:ListServiceQuotas'], resources: ['*'] }),
  );
  acknowledge(fn, {
    'AwsSolutions-IAM5[Resource::*]':
      "ListServiceQuotas takes no resource: it reads the account's applied quotas, nothing else.",
  });
}
