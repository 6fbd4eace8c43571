import { Construct } from 'constructs';
import type { EnvironmentOf, finalizerSettings } from '../../shared/config.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';
import { bedrockEnvironment, type PipelineSettings, quotaEnvironment } from '../props.ts';
import { grantQuotaReading } from './bedrock-access.ts';
import { grantSend } from './key-use.ts';
import { LONG_STEP_TIMEOUT } from './pipeline-function.ts';
import { QueueWorker } from './queue-worker.ts';
import type { Storage } from './storage.ts';

export interface FinalizeProps {
  readonly settings: PipelineSettings;
  readonly storage: Storage;
}

/**
 * The finalize queue and the finalizer: one job at a time per invocation, two at once, writing the ordered
 * output and the manifest from the work/ prefix to outputs/ and handing over to itself through its queue.
 */
export class Finalize extends Construct {
  readonly jobs: QueueWorker;

  constructor(scope: Construct, id: string, props: FinalizeProps) {
    super(scope, id);
    const { settings, storage } = props;
    this.jobs = new QueueWorker(this, 'Finalizer', {
      name: 'finalizer',
      overrides: settings.functionProps,
      timeout: LONG_STEP_TIMEOUT,
      memorySize: 2_048,
      maxReceiveCount: RETRY_LAYERS.maxReceives.finalize,
      encryptionKey: storage.key,
      environment: (queue) =>
        ({
          ...storage.environment,
          FINALIZE_QUEUE_URL: queue.queueUrl,
          // The manifest names each pool's quota: the finalizer reads them as the worker does.
          ...bedrockEnvironment(settings),
          ...quotaEnvironment(settings),
        }) satisfies EnvironmentOf<typeof finalizerSettings>,
      eventSource: { batchSize: 1, maxConcurrency: 2 },
    });
    const finalizer = this.jobs.function;
    storage.grantObjects(finalizer, 'read', ['work']);
    storage.grantObjects(finalizer, 'write', ['outputs']);
    storage.grantList(finalizer);
    storage.grantLedger(finalizer, ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem']);
    grantSend(this.jobs.queue, finalizer.function);
    finalizer.publishEvents();
    if (settings.readServiceQuotas) grantQuotaReading(finalizer);
  }
}
