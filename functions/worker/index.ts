import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';
import { loadConfig, retryPolicyOf, workerSettings } from '../../shared/config.ts';
import { systemClock } from '../../shared/pipeline/clock.ts';
import { ServiceQuotaRates } from '../../shared/quotas/pool-rates.ts';
import { DynamoDbTokenBudget } from '../adapters/dynamodb-budget.ts';
import { functionPorts } from '../adapters/function-ports.ts';
import { ServiceQuotasSource } from '../adapters/service-quotas.ts';
import { addressesOf, deploymentPools, lambdaEnvironment } from '../environment.ts';
import { createWorkerHandler } from './handler.ts';

const config = loadConfig(workerSettings);
const { clients, ...observed } = lambdaEnvironment('worker', config);

/** Refreshed this often: a quota raised in Service Quotas is spent within minutes, with no deploy. */
const QUOTA_REFRESH_MS = 5 * 60_000;

const rates = config.READ_SERVICE_QUOTAS
  ? new ServiceQuotaRates(deploymentPools(config), new ServiceQuotasSource(), {
      fallback: config.TOKENS_PER_MINUTE,
      share: config.QUOTA_SHARE,
      refreshMs: QUOTA_REFRESH_MS,
    })
  : { tokensPerMinute: config.TOKENS_PER_MINUTE };

export const handler = createWorkerHandler({
  ...observed,
  ports: functionPorts({ clients }).worker(
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
  },
});
