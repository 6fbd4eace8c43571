import { loadConfig, sweeperSettings } from '../../shared/config.ts';
import { DynamoDbLedger } from '../adapters/dynamodb-ledger.ts';
import { QueueDeadLetters } from '../adapters/events.ts';
import { busPublisher, lambdaEnvironment } from '../environment.ts';
import { createSweeperHandler } from './handler.ts';

const config = loadConfig(sweeperSettings);
const { clients, ...observed } = lambdaEnvironment('sweeper', config);

export const handler = createSweeperHandler({
  ...observed,
  ports: {
    jobs: new DynamoDbLedger(clients.documents, config.LEDGER_TABLE_NAME),
    deadLetters: new QueueDeadLetters(clients.sqs, config.RECORD_DLQ_URL),
    events: busPublisher(clients, config.EVENT_BUS_NAME),
  },
  stuckAfterMinutes: config.STUCK_AFTER_MINUTES,
});
