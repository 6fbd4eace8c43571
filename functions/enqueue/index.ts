import { enqueueSettings, loadConfig } from '../../shared/config.ts';
import { addressesOf, busPutEvent, jobDefaultsOf, lambdaEnvironment, maxLineBytes } from '../environment.ts';
import { functionPorts } from '../function-ports.ts';
import { createEnqueueHandler } from './handler.ts';

const config = loadConfig(enqueueSettings);
const { clients, ...observed } = lambdaEnvironment('enqueue', config);

export const handler = createEnqueueHandler({
  ...observed,
  ports: functionPorts({
    clients,
    putEvent: busPutEvent(clients, config),
    batchRoleArn: config.BATCH_ROLE_ARN,
  }).enqueue(addressesOf(config)),
  settings: {
    defaults: jobDefaultsOf(config),
    maxLineBytes,
    tokensPerMinute: config.TOKENS_PER_MINUTE,
    maxDecompressedBytes: config.MAX_DECOMPRESSED_BYTES,
  },
});
