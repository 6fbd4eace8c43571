import { catalogInUse, DEFAULT_MODEL, endpointKinds } from '../shared/catalog/catalog.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../shared/config.ts';
import { lanes } from '../shared/contract/lanes.ts';
import { serviceTiers } from '../shared/contract/service-tiers.ts';
import type { OptionSpec } from './command-line.ts';
import { DEFAULT_RESOURCES_FILE } from './resources.ts';

/**
 * Every option of the CLI, once, with what its help says: commands take the ones they read, so an option
 * means the same on every command that has it.
 */
const modelKeys = () => catalogInUse().models.map((model) => model.key);
const regions = () => catalogInUse().knownRegions;

export const modelOptions = {
  model: {
    type: 'string',
    value: 'alias|id',
    help: `the model: a catalog alias (bedrock-batch quotas lists them) or a Bedrock model id or inference profile; a line's own "model" wins (default: the file's model metadata, else ${DEFAULT_MODEL})`,
    choices: modelKeys,
  },
  region: {
    type: 'string',
    value: 'region',
    default: 'us-west-2',
    help: 'the AWS region calls are signed for: the home of the quota',
    choices: regions,
  },
  regions: {
    type: 'string',
    value: 'r1,r2',
    help: 'source regions whose quota pools the file may spread over, home first (data stays in its geography)',
  },
  endpoint: {
    type: 'string',
    value: endpointKinds.join('|'),
    help: 'the inference profile kind: global (cross-geography), regional (one geography) or in-region (the bare model id) (default: global)',
    choices: () => endpointKinds,
  },
  endpoints: {
    type: 'string',
    value: 'e1,e2',
    help: 'endpoint kinds the file may spread over, as quota pools of their own',
  },
  'max-tokens': {
    type: 'string',
    value: 'n',
    help: "max_tokens for records that give none (default: the stack's; 1024 on run and plan)",
  },
  lane: {
    type: 'string',
    value: lanes.join('|'),
    help: "on-demand calls within the quota, batch inference jobs (half price, results within the deadline), or auto: batch when the deadline allows (default: the stack's; on-demand on run)",
    choices: () => lanes,
  },
  deadline: {
    type: 'string',
    value: 'duration',
    help: 'when the results are due, as 30m, 6h or 2d: how long a batch job may run before its records go on demand',
  },
  cache: {
    type: 'string',
    value: 'auto|off',
    help: 'auto caches the prefix the records share (a system prompt, a document) and reads it for the rest; off sends every record whole (default: auto)',
    choices: () => ['auto', 'off'],
  },
  tier: {
    type: 'string',
    value: serviceTiers.join('|'),
    help: "Bedrock's service tier for the calls: priority answers faster at a premium, flex cheaper at lower priority; a model that does not take the tier runs on default, and the manifest says which tier served each record (default: the stack's; default on run)",
    choices: () => serviceTiers,
  },
  'max-error-rate': {
    type: 'string',
    value: 'rate',
    help: 'the share of invalid lines, as 10% or 0.1, at which the job stops reading the file (default: 50%)',
  },
  'max-cost': {
    type: 'string',
    value: 'usd',
    help: 'the most the job may spend, in USD: once its counted cost reaches it, no record starts a call, the rest end canceled and the manifest says why (calls under way finish, so it may be exceeded by what they cost) (default: no cap)',
  },
} as const satisfies Readonly<Record<string, OptionSpec>>;

/** Where the quota comes from, for the commands that spend or plan it. */
export const quotaOptions = {
  bedrock: {
    type: 'string',
    value: 'local|aws',
    default: 'local',
    help: 'local: the Bedrock stand-in on this machine; aws: real Bedrock with your default AWS credentials, at the quota Service Quotas applies to your account',
    choices: () => ['local', 'aws'],
  },
  'quota-tpm': {
    type: 'string',
    value: 'n',
    help: `tokens a minute to spend: the stand-in's quota with --bedrock local (default: ${DEFAULT_TOKENS_PER_MINUTE.toLocaleString('en-US')}), instead of Service Quotas with --bedrock aws`,
  },
  'quota-share': {
    type: 'string',
    value: 'x',
    help: 'the part of each quota to spend, above 0 and at most 1, leaving the rest to other applications (default: 1)',
  },
} as const satisfies Readonly<Record<string, OptionSpec>>;

/** Which pipeline a command talks to: a deployed stack, or the local cloud `local up` runs. */
export const resourceOptions = {
  stack: {
    type: 'string',
    value: 'name',
    help: "a deployed stack's name: its resources are read from its CloudFormation outputs",
  },
  resources: {
    type: 'string',
    value: 'file',
    help: `a resources file, as bedrock-batch local up writes it (default: ${DEFAULT_RESOURCES_FILE})`,
    path: true,
  },
  region: {
    type: 'string',
    value: 'region',
    help: "the stack's region (default: your AWS configuration's)",
    choices: regions,
  },
} as const satisfies Readonly<Record<string, OptionSpec>>;

export const jsonOption = {
  json: { type: 'boolean', default: false, help: 'print JSON on stdout instead of text' },
} as const satisfies Readonly<Record<string, OptionSpec>>;

export const outOption = (help: string) =>
  ({ out: { type: 'string', value: 'dir', default: '.', help, path: true } }) as const satisfies Readonly<
    Record<string, OptionSpec>
  >;

export const speedOption = {
  speed: {
    type: 'string',
    value: 'x',
    help: "the stand-in's answer time as a multiple of the model's published latency: 0 answers at once, 2 takes twice as long (default: 1)",
  },
} as const satisfies Readonly<Record<string, OptionSpec>>;
