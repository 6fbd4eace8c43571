/**
 * `npm run bedrock:local`: the Bedrock stand-in on its own, for pointing any client at it.
 *   npm run bedrock:local -- --port 8787 --region us-west-2 --speed 1 --tpm 400000 [--tpd N] [--rpm N] --fault ThrottlingException=0.05
 */
import { parseArgs } from 'node:util';
import type { BedrockErrorName } from '../../shared/failures.ts';
import type { FaultRates } from './faults.ts';
import { startBedrockStandIn } from './stand-in.ts';
import { isBedrockErrorName } from './wire-errors.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    region: { type: 'string', default: 'us-west-2' },
    speed: { type: 'string', default: '1' },
    tpm: { type: 'string', default: '2000000' },
    tpd: { type: 'string' },
    rpm: { type: 'string' },
    seed: { type: 'string', default: '1' },
    fault: { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'Usage: npm run bedrock:local -- [--port N] [--region R] [--speed X] [--tpm N] [--tpd N] [--rpm N] [--seed N] [--fault Name=rate ...]\n',
  );
  process.exit(0);
}

const number = (name: string, text: string): number => {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    process.stderr.write(`--${name} must be a non-negative number, not "${text}"\n`);
    process.exit(2);
  }
  return value;
};

const rates: FaultRates = {};
for (const spec of values.fault) {
  const [name = '', rate = ''] = spec.split('=');
  if (name !== 'slow' && !isBedrockErrorName(name)) {
    process.stderr.write(`--fault ${spec}: "${name}" is not a Bedrock error name\n`);
    process.exit(2);
  }
  rates[name as BedrockErrorName | 'slow'] = number('fault', rate);
}

const standIn = await startBedrockStandIn({
  port: number('port', values.port),
  region: values.region,
  speed: number('speed', values.speed),
  seed: number('seed', values.seed),
  quota: {
    tokensPerMinute: number('tpm', values.tpm),
    tokensPerDay: values.tpd === undefined ? undefined : number('tpd', values.tpd),
    requestsPerMinute: values.rpm === undefined ? undefined : number('rpm', values.rpm),
  },
  faults: { rates },
});

process.stdout.write(`Bedrock stand-in listening on ${standIn.endpoint} (region ${standIn.region}, HTTP/2 and HTTP/1.1)

  aws bedrock-runtime invoke-model --endpoint-url ${standIn.endpoint} --region ${standIn.region} \\
    --model-id global.anthropic.claude-opus-4-6-v1 \\
    --body '{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}' out.json

  (AWS CLI v2 also needs --cli-binary-format raw-in-base64-out)

  new BedrockRuntimeClient({ region: '${standIn.region}', endpoint: '${standIn.endpoint}' })
  new AnthropicBedrock({ awsRegion: '${standIn.region}', baseURL: '${standIn.endpoint}' })

Any AWS credentials work (SigV4 scoped to bedrock/${standIn.region}). State: ${standIn.endpoint}/_stand-in/state
Ctrl-C stops it.
`);

const stop = async () => {
  await standIn.close();
  process.exit(0);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
