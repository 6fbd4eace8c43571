import { AssetHashType, Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../shared/contract/metrics.ts';
import { BUNDLE_HANDLER, type FunctionName, functionBundle } from '../function-bundles.ts';

export interface PipelineFunctionProps {
  /** functions/<name>/index.ts is the entry point. */
  readonly name: FunctionName;
  readonly timeout: Duration;
  readonly environment: Readonly<Record<string, string>>;
  readonly memorySize?: number | undefined;
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

/** Acknowledges cdk-nag findings on a construct and its children, each with the reason it is acceptable. */
export function acknowledge(construct: Construct, reasons: Readonly<Record<string, string>>): void {
  for (const [id, reason] of Object.entries(reasons)) Validations.of(construct).acknowledge({ id, reason });
}
