import { loadConfig, sweeperSettings } from '../../shared/config.ts';
import { addressesOf, busPutEvent, lambdaEnvironment } from '../environment.ts';
import { functionPorts } from '../function-ports.ts';
import { createSweeperHandler } from './handler.ts';

const config = loadConfig(sweeperSettings);
const { clients, ...observed } = lambdaEnvironment('sweeper', config);

export const handler = createSweeperHandler({
  ...observed,
  ports: functionPorts({ clients, putEvent: busPutEvent(clients, config) }).sweeper(addressesOf(config)),
  resumeAfterMinutes: config.RESUME_AFTER_MINUTES,
  stuckAfterMinutes: config.STUCK_AFTER_MINUTES,
});
