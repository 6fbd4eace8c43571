import { Duration } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { EnvironmentOf, messageBatchesSettings } from '../../shared/config.ts';
import type { FunctionOverrides } from '../escape-hatches.ts';
import type { PipelineSettings } from '../props.ts';
import { bedrockEnvironment, userCatalogEnvironment } from '../props.ts';
import { PipelineFunction } from './pipeline-function.ts';
import type { Storage } from './storage.ts';

export interface MessageBatchesApiProps {
  readonly storage: Storage;
  readonly settings: PipelineSettings;
  /** Every caller sees every batch; by default each IAM principal sees the batches it created. */
  readonly shareAcrossCallers: boolean;
  /** Days a batch is kept (its record, requests and results), as Anthropic keeps results 29 days. */
  readonly retentionDays: number;
  /** Requests a second the API takes, and in a burst, before it answers 429. */
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly functionProps?: FunctionOverrides | undefined;
}

/**
 * Anthropic's Message Batches API over the pipeline, on AWS: an HTTP API whose every route needs IAM
 * authorization (SigV4: the package's `signedFetch`), throttled, with access logs, in front of a function
 * that talks to the pipeline's bucket and ledger. A batch created here is a job like any file's.
 */
export class MessageBatchesApi extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly handler: PipelineFunction;

  constructor(scope: Construct, id: string, props: MessageBatchesApiProps) {
    super(scope, id);
    const { storage, settings } = props;
    this.handler = new PipelineFunction(this, 'Handler', {
      name: 'message-batches',
      timeout: Duration.seconds(29),
      overrides: props.functionProps,
      environment: {
        ...bedrockEnvironment(settings),
        ...userCatalogEnvironment(settings),
        ...storage.environment,
        DEFAULT_LANE: settings.defaultLane,
        DEFAULT_CACHE: settings.promptCache,
        DEFAULT_TIER: settings.serviceTier,
        MAX_ERROR_RATE: String(settings.maxErrorRate),
        ...(settings.defaultDeadline === undefined ? {} : { DEFAULT_DEADLINE: settings.defaultDeadline }),
        MESSAGE_BATCHES_SHARED: String(props.shareAcrossCallers),
      } satisfies EnvironmentOf<typeof messageBatchesSettings>,
    });
    this.grantAccess(storage);
    storage.expireObjects(
      'message-batches',
      ['message-batches', 'inputs/message-batches', 'outputs/message-batches'],
      Duration.days(props.retentionDays),
    );
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.ONE_YEAR });
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: "Anthropic's Message Batches API over the batch pipeline (IAM authorization)",
      createDefaultStage: false,
      defaultAuthorizer: new HttpIamAuthorizer(),
    });
    new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: { destination: new apigwv2.LogGroupLogDestination(accessLogs) },
    });
    const integration = new HttpLambdaIntegration('Handler', this.handler.function);
    for (const path of ['/v1/messages/batches', '/v1/messages/batches/{proxy+}'])
      this.api.addRoutes({ path, methods: [apigwv2.HttpMethod.ANY], integration });
  }

  /** Where batches live: their records, their requests as input files, their results; the ledger's jobs. */
  private grantAccess(storage: Storage): void {
    const fn = this.handler;
    storage.grantObjects(fn, 'read', ['message-batches', 'outputs/message-batches']);
    storage.grantObjects(fn, 'write', ['message-batches', 'inputs/message-batches']);
    storage.grantObjects(fn, 'delete', [
      'message-batches',
      'inputs/message-batches',
      'outputs/message-batches',
    ]);
    storage.grantList(fn, 'message-batches');
    storage.grantLedger(fn, [
      'dynamodb:GetItem',
      'dynamodb:Query',
      'dynamodb:BatchGetItem',
      'dynamodb:UpdateItem',
    ]);
  }

  /** The base URL to give Anthropic's SDK. */
  get url(): string {
    return this.api.apiEndpoint;
  }
}
