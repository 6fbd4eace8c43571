import { Duration } from 'aws-cdk-lib';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvironmentOf, workerSettings } from '../../shared/config.ts';
import { RESULTS_KEY_PATTERN } from '../../shared/contract/storage-layout.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';
import {
  bedrockEnvironment,
  type PipelineSettings,
  quotaEnvironment,
  spendingEnvironment,
} from '../props.ts';
import { bedrockInvokeStatements, grantQuotaReading } from './bedrock-access.ts';
import { grantSend } from './key-use.ts';
import { acknowledge } from './pipeline-function.ts';
import { QueueWorker } from './queue-worker.ts';
import type { Storage } from './storage.ts';

export interface ProcessingProps {
  readonly settings: PipelineSettings;
  readonly storage: Storage;
  /** Where the worker says a job's last record is counted. */
  readonly finalizeQueue: sqs.IQueue;
}

/**
 * The record queue and the worker that calls Bedrock for each record, with exactly the Bedrock access the
 * allowed models need. Retries come back through the queue and the ledger ends a record after its attempts;
 * the DLQ is for messages the code cannot handle at all.
 */
export class Processing extends Construct {
  readonly records: QueueWorker;

  constructor(scope: Construct, id: string, props: ProcessingProps) {
    super(scope, id);
    const { settings, storage } = props;
    const { worker: shape } = settings;
    this.records = new QueueWorker(this, 'Worker', {
      name: 'worker',
      overrides: { ...settings.functionProps, ...settings.workerFunctionProps },
      timeout: Duration.seconds(shape.timeoutSeconds),
      maxReceiveCount: RETRY_LAYERS.maxReceives.records,
      encryptionKey: storage.key,
      environment: (queue) =>
        ({
          ...bedrockEnvironment(settings),
          ...storage.environment,
          RECORD_QUEUE_URL: queue.queueUrl,
          FINALIZE_QUEUE_URL: props.finalizeQueue.queueUrl,
          ...quotaEnvironment(settings),
          LEASE_SECONDS: String(shape.leaseSeconds),
          ...spendingEnvironment(settings),
        }) satisfies EnvironmentOf<typeof workerSettings>,
      eventSource: {
        batchSize: shape.batchSize,
        maxBatchingWindow: Duration.seconds(shape.batchingWindowSeconds),
        maxConcurrency: shape.concurrency,
        reportBatchItemFailures: true,
      },
    });
    const worker = this.records.function;
    storage.grantObjects(worker, 'read', ['inputs', 'work']);
    // Results only: staged batch input, which Bedrock's role reads, stays out of the worker's reach.
    storage.grantObjects(worker, 'write', [RESULTS_KEY_PATTERN]);
    // A result set an attempt died before storing must read as missing (404), not as denied (403).
    storage.grantList(worker);
    storage.grantLedger(worker, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    grantSend(props.finalizeQueue, worker.function);
    for (const statement of bedrockInvokeStatements(this, settings.poolModels))
      worker.function.addToRolePolicy(statement);
    if (settings.readServiceQuotas) grantQuotaReading(worker);
    acknowledge(
      worker,
      Object.fromEntries(
        settings.poolModels
          .filter((model) => model.endpoint === 'regional')
          .map((model) => [
            `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${model.model.bedrockId}]`,
            'A geographic inference profile picks the region the model runs in (and may add regions); the statement is conditioned on bedrock:InferenceProfileArn, so the model is reachable only through the profile.',
          ]),
      ),
    );
  }
}
