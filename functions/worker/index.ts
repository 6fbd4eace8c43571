import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';
import { loadConfig, retryPolicyOf, workerSettings } from '../../shared/config.ts';
import { systemClock } from '../../shared/pipeline/clock.ts';
import { BedrockInvoker } from '../adapters/bedrock-invoker.ts';
import { DynamoDbTokenBudget } from '../adapters/dynamodb-budget.ts';
import { DynamoDbLedger } from '../adapters/dynamodb-ledger.ts';
import { QueueFinalizeTrigger } from '../adapters/events.ts';
import { S3ObjectStore } from '../adapters/s3-object-store.ts';
import { SqsRecordQueue } from '../adapters/sqs-record-queue.ts';
import { lambdaEnvironment } from '../environment.ts';
import { createWorkerHandler } from './handler.ts';

const config = loadConfig(workerSettings);
const { clients, ...observed } = lambdaEnvironment('worker', config);

export const handler = createWorkerHandler({
  ...observed,
  ports: {
    store: new S3ObjectStore(clients.s3),
    ledger: new DynamoDbLedger(clients.documents, config.LEDGER_TABLE_NAME, Date.now, config.RETENTION_DAYS),
    queue: new SqsRecordQueue(clients.sqs, config.RECORD_QUEUE_URL),
    finalize: new QueueFinalizeTrigger(clients.sqs, config.FINALIZE_QUEUE_URL),
    model: new BedrockInvoker(clients.bedrock),
    budget: new DynamoDbTokenBudget(clients.documents, config.LEDGER_TABLE_NAME, {
      tokensPerMinute: config.TOKENS_PER_MINUTE,
    }),
  },
  settings: {
    policy: retryPolicyOf(config),
    outputBurndown: config.OUTPUT_TOKEN_BURNDOWN,
    leaseSeconds: config.LEASE_SECONDS,
    // One per instance: it learns from every invocation the instance serves.
    reservations: new ReservationEstimator(config.OUTPUT_TOKEN_BURNDOWN),
    tokensPerMinute: config.TOKENS_PER_MINUTE,
    countTokensAbove: config.COUNT_TOKENS_ABOVE,
    clock: systemClock,
  },
});
