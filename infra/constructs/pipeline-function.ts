import { AssetHashType, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../shared/contract/metrics.ts';
import type { FunctionOverrides } from '../escape-hatches.ts';
import { BUNDLE_HANDLER, type FunctionName, functionBundle } from '../function-bundles.ts';

export interface PipelineFunctionProps {
  /** functions/<name>/index.ts is the entry point. */
  readonly name: FunctionName;
  readonly timeout: Duration;
  readonly environment: Readonly<Record<string, string>>;
  readonly memorySize?: number | undefined;
  /** The team's props for the function (memory, networking...), over the pipeline's choices. */
  readonly overrides?: FunctionOverrides | undefined;
}

/** Lambda's longest timeout: reading a file and writing its output take it, checkpointed. */
export const LONG_STEP_TIMEOUT = Duration.minutes(15);

/**
 * One of the pipeline's functions: Node.js 22 on arm64, its bundle (see `functionBundle`) with source maps,
 * traced, logs kept a month, Powertools configured.
 */
export class PipelineFunction extends Construct {
  readonly function: lambda.Function;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.ONE_MONTH });
    // Its own role, writing its own log group only (the managed basic execution policy allows any group).
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    const bundle = functionBundle(props.name);
    this.function = new lambda.Function(this, 'Function', {
      role,
      code: lambda.Code.fromAsset(bundle.directory, {
        assetHashType: AssetHashType.CUSTOM,
        assetHash: bundle.codeHash,
      }),
      handler: BUNDLE_HANDLER,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 1_024,
      ...props.overrides,
      timeout: props.timeout,
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.name,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false',
        ...props.environment,
      },
    });
    this.traceActively(role);
    acknowledge(this, {
      'AwsSolutions-L1':
        'Pinned to nodejs22.x, the runtime the code and its AWS SDK versions are tested for; a runtime upgrade is a tested change, not an automatic one.',
      ...(props.overrides?.vpc === undefined
        ? {}
        : {
            'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]':
              "The network interfaces a function in the team's VPC needs; Lambda's managed policy is the documented way to allow them.",
          }),
    });
  }

  /**
   * Active X-Ray tracing, with X-Ray's one statement in a policy of its own: its `*` resource is acknowledged
   * there and nowhere else, so a later `*` in the function's other statements is still reported.
   */
  private traceActively(role: iam.Role): void {
    const tracing = new iam.Policy(this, 'Tracing', {
      statements: [
        new iam.PolicyStatement({
          actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          resources: ['*'],
        }),
      ],
    });
    role.attachInlinePolicy(tracing);
    (this.function.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: 'Active' };
    // Lambda refuses active tracing for a role that may not yet write to X-Ray.
    this.function.node.addDependency(tracing);
    acknowledge(tracing, {
      'AwsSolutions-IAM5[Resource::*]':
        'X-Ray PutTraceSegments and PutTelemetryRecords have no resource-level permissions.',
    });
  }

  /** Lets the function put the pipeline's events (job lifecycle, continuations) on the account's default bus. */
  publishEvents(): void {
    events.EventBus.fromEventBusName(this, 'DefaultBus', 'default').grantPutEventsTo(this.function);
  }
}

/**
 * A resource as a cdk-nag finding names it (`<Logical.Arn>/work/*`, `arn:<AWS::Partition>:s3:::name/*`):
 * whichever stack made it, or none when it was imported.
 */
export function findingResource(scope: Construct, value: string): string {
  const visit = (node: unknown): string => {
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
    if (typeof node !== 'object' || node === null) return JSON.stringify(node);
    const intrinsic = node as Record<string, unknown>;
    if ('Ref' in intrinsic) return `<${visit(intrinsic.Ref)}>`;
    if ('Fn::GetAtt' in intrinsic) {
      const [resource, attribute] = intrinsic['Fn::GetAtt'] as [unknown, unknown];
      return `<${visit(resource)}.${visit(attribute)}>`;
    }
    if ('Fn::Join' in intrinsic) {
      const [delimiter, items] = intrinsic['Fn::Join'] as [string, unknown[]];
      return items.map(visit).join(delimiter);
    }
    if ('Fn::Sub' in intrinsic) return visit(intrinsic['Fn::Sub']);
    if ('Fn::ImportValue' in intrinsic) return visit(intrinsic['Fn::ImportValue']);
    return JSON.stringify(node);
  };
  return visit(Stack.of(scope).resolve(value));
}

/** Acknowledges cdk-nag findings on a construct and its children, each with the reason it is acceptable. */
export function acknowledge(construct: Construct, reasons: Readonly<Record<string, string>>): void {
  for (const [id, reason] of Object.entries(reasons)) Validations.of(construct).acknowledge({ id, reason });
}
