import { catalogInUse } from '../../shared/catalog/catalog.ts';
import { batchWatcherSettings, loadConfig } from '../../shared/config.ts';
import { addressesOf, lambdaEnvironment } from '../environment.ts';
import { functionPorts } from '../function-ports.ts';
import { createBatchHandler } from './handler.ts';

const config = loadConfig(batchWatcherSettings);
const { clients, ...observed } = lambdaEnvironment('batch', config);

export const handler = createBatchHandler({
  ...observed,
  ports: functionPorts({
    clients,
    batchRoleArn: config.BATCH_ROLE_ARN,
    countsDailySpend: config.MAX_DAILY_COST_USD !== undefined,
  }).batch(addressesOf(config)),
  settings: { catalog: catalogInUse() },
});
