import { loadConfig, sweeperSettings } from '../../shared/config.ts';
import { DynamoDbLedger } from '../adapters/dynamodb-ledger.ts';
import { QueueDeadLetters, QueueFinalizeTrigger } from '../adapters/events.ts';
import { busPublisher, lambdaEnvironment } from '../environment.ts';
import { createSweeperHandler } from './handler.ts';

const config = loadConfig(sweeperSettings);
const { clients, ...observed } = lambdaEnvironment('sweeper', config);
const bus = busPublisher(clients, config.EVENT_BUS_NAME);

export const handler = createSweeperHandler({
  ...observed,
  ports: {
    ledger: new DynamoDbLedger(clients.documents, config.LEDGER_TABLE_NAME),
    deadLetters: new QueueDeadLetters(clients.sqs, config.RECORD_DLQ_URL),
    events: bus,
    continuation: bus,
    finalize: new QueueFinalizeTrigger(clients.sqs, config.FINALIZE_QUEUE_URL),
  },
  resumeAfterMinutes: config.RESUME_AFTER_MINUTES,
  stuckAfterMinutes: config.STUCK_AFTER_MINUTES,
});
