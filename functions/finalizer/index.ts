import { finalizerSettings, loadConfig } from '../../shared/config.ts';
import { addressesOf, busPutEvent, deploymentQuotas, lambdaEnvironment } from '../environment.ts';
import { functionPorts } from '../function-ports.ts';
import { createFinalizerHandler } from './handler.ts';

const config = loadConfig(finalizerSettings);
const { clients, ...observed } = lambdaEnvironment('finalizer', config);

export const handler = createFinalizerHandler({
  ...observed,
  ports: functionPorts({ clients, putEvent: busPutEvent(clients, config) }).finalizer(
    addressesOf(config),
    deploymentQuotas(config).report,
  ),
});
