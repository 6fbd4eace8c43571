import { finalizerSettings, loadConfig } from '../../shared/config.ts';
import { DynamoDbLedger } from '../adapters/dynamodb-ledger.ts';
import { QueueFinalizeTrigger } from '../adapters/events.ts';
import { S3ObjectStore } from '../adapters/s3-object-store.ts';
import { busPublisher, lambdaEnvironment } from '../environment.ts';
import { createFinalizerHandler } from './handler.ts';

const config = loadConfig(finalizerSettings);
const { clients, ...observed } = lambdaEnvironment('finalizer', config);

export const handler = createFinalizerHandler({
  ...observed,
  ports: {
    store: new S3ObjectStore(clients.s3),
    ledger: new DynamoDbLedger(clients.documents, config.LEDGER_TABLE_NAME, Date.now, config.RETENTION_DAYS),
    events: busPublisher(clients, config.EVENT_BUS_NAME),
    finalize: new QueueFinalizeTrigger(clients.sqs, config.FINALIZE_QUEUE_URL),
  },
});
