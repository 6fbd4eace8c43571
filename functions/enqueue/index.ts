import { enqueueSettings, loadConfig } from '../../shared/config.ts';
import { DynamoDbLedger } from '../adapters/dynamodb-ledger.ts';
import { QueueFinalizeTrigger } from '../adapters/events.ts';
import { S3ObjectStore } from '../adapters/s3-object-store.ts';
import { SqsRecordQueue } from '../adapters/sqs-record-queue.ts';
import { busPublisher, jobDefaultsOf, lambdaEnvironment, maxLineBytes } from '../environment.ts';
import { createEnqueueHandler } from './handler.ts';

const config = loadConfig(enqueueSettings);
const { clients, ...observed } = lambdaEnvironment('enqueue', config);
const events = busPublisher(clients, config.EVENT_BUS_NAME);

export const handler = createEnqueueHandler({
  ...observed,
  ports: {
    store: new S3ObjectStore(clients.s3),
    ledger: new DynamoDbLedger(clients.documents, config.LEDGER_TABLE_NAME, Date.now, config.RETENTION_DAYS),
    queue: new SqsRecordQueue(clients.sqs, config.RECORD_QUEUE_URL),
    events,
    continuation: events,
    finalize: new QueueFinalizeTrigger(clients.sqs, config.FINALIZE_QUEUE_URL),
  },
  settings: { defaults: jobDefaultsOf(config), maxLineBytes },
});
