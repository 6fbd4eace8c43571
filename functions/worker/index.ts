import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';
import { loadConfig, retryPolicyOf, workerSettings } from '../../shared/config.ts';
import { systemClock } from '../../shared/core/clock.ts';
import { DynamoDbTokenBudget } from '../adapters/dynamodb-budget.ts';
import { addressesOf, deploymentQuotas, lambdaEnvironment } from '../environment.ts';
import { functionPorts } from '../function-ports.ts';
import { createWorkerHandler } from './handler.ts';

const config = loadConfig(workerSettings);
const { clients, ...observed } = lambdaEnvironment('worker', config);

const { rates } = deploymentQuotas(config);

export const handler = createWorkerHandler({
  ...observed,
  ports: functionPorts({ clients, countsDailySpend: config.MAX_DAILY_COST_USD !== undefined }).worker(
    addressesOf(config),
    new DynamoDbTokenBudget(clients.documents, config.LEDGER_TABLE_NAME, rates),
  ),
  settings: {
    policy: retryPolicyOf(config),
    outputBurndown: config.OUTPUT_TOKEN_BURNDOWN,
    leaseSeconds: config.LEASE_SECONDS,
    // One per instance: it learns from every invocation the instance serves.
    reservations: new ReservationEstimator(config.OUTPUT_TOKEN_BURNDOWN),
    tokensPerMinute: config.TOKENS_PER_MINUTE,
    countTokensAbove: config.COUNT_TOKENS_ABOVE,
    clock: systemClock,
    ...(config.MAX_DAILY_COST_USD === undefined ? {} : { maxDailyCostUsd: config.MAX_DAILY_COST_USD }),
  },
});
