import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import type { ResolvedModel } from '../../shared/models/resolve-model.ts';

const ACTIONS = ['bedrock:InvokeModel', 'bedrock:CountTokens'];

/**
 * The least IAM that lets a function call exactly these models (aws-facts.md, "IAM for inference profiles"):
 * - in-region: the foundation model in the region;
 * - geographic profile (us., eu., ...): the profile in the source region and the foundation model in every
 *   region of the geography it may route to;
 * - global profile: the profile, the foundation model in the source region, and the region-less foundation
 *   model ARN with aws:RequestedRegion "unspecified".
 */
export function bedrockInvokeStatements(
  scope: IConstruct,
  models: readonly ResolvedModel[],
): iam.PolicyStatement[] {
  const { account, partition } = Stack.of(scope);
  const statements: iam.PolicyStatement[] = [];
  for (const { endpoint, model, region, geography, modelId } of models) {
    const foundationModel = (inRegion: string) =>
      `arn:${partition}:bedrock:${inRegion}::foundation-model/${model.bedrockId}`;
    const profile = `arn:${partition}:bedrock:${region}:${account}:inference-profile/${modelId}`;
    if (endpoint === 'in-region') {
      statements.push(new iam.PolicyStatement({ actions: ACTIONS, resources: [foundationModel(region)] }));
    } else if (endpoint === 'regional') {
      const destinations = defaultCatalog.geography(geography.key)?.regions ?? [region];
      statements.push(
        new iam.PolicyStatement({
          actions: ACTIONS,
          resources: [profile, ...destinations.map(foundationModel)],
        }),
      );
    } else {
      statements.push(new iam.PolicyStatement({ actions: ACTIONS, resources: [profile] }));
      statements.push(
        new iam.PolicyStatement({
          actions: ACTIONS,
          resources: [foundationModel(region)],
          conditions: { StringEquals: { 'aws:RequestedRegion': region } },
        }),
      );
      statements.push(
        new iam.PolicyStatement({
          actions: ACTIONS,
          resources: [`arn:${partition}:bedrock:::foundation-model/${model.bedrockId}`],
          conditions: { StringEquals: { 'aws:RequestedRegion': 'unspecified' } },
        }),
      );
    }
  }
  return statements;
}
