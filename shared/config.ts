import { z } from 'zod';
import { deadlineHoursSchema } from './batch/lane.ts';
import {
  DEFAULT_MODEL,
  defaultCatalog,
  type EndpointKind,
  endpointKinds,
  useCatalog,
} from './catalog/catalog.ts';
import { mergeCatalog } from './catalog/user-catalog.ts';
import { DEFAULT_LANE, lanes } from './contract/lanes.ts';
import { DEFAULT_SERVICE_TIER, serviceTiers } from './contract/service-tiers.ts';
import { ConfigurationError, ModelSelectionError } from './errors.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './failures.ts';
import { DEFAULT_MAX_ERROR_RATE } from './input/error-rate.ts';
import { DEFAULT_MAX_DECOMPRESSED_BYTES } from './input/file-check.ts';
import { resolveModel } from './models/resolve-model.ts';
import { RETRY_LAYERS } from './retry-layers.ts';

/**
 * The functions' settings, one environment variable each. Every schema is parsed once at cold start with
 * `loadConfig`; a missing or bad value stops the function with a message naming the variable and what it
 * should hold, instead of failing later on the first record.
 */
const required = (help: string) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is missing' : 'must be text') })
    .trim()
    .min(1, 'is empty')
    .describe(help);
const positiveInteger = (help: string, fallback: number) =>
  z.coerce
    .number()
    .int('must be a whole number')
    .positive('must be positive')
    .default(fallback)
    .describe(help);

/** Quota tokens one output token costs for Claude 4 and later models. */
export const OUTPUT_TOKEN_BURNDOWN = 5;
/** The Bedrock tokens-per-minute quota a deployment, a function or a local run may spend unless told. */
export const DEFAULT_TOKENS_PER_MINUTE = 400_000;
/** Inputs estimated above this many tokens are counted exactly before the budget reserves for them. */
export const COUNT_TOKENS_ABOVE = 20_000;
/** A step without progress this long has stopped (longer than a function can run): the sweeper takes it up. */
export const RESUME_AFTER_MINUTES = 16;

export const bedrockSettings = {
  BEDROCK_REGION: required('the AWS region that makes the Bedrock calls, e.g. us-west-2 (never defaulted)'),
  BEDROCK_MODEL: z
    .string()
    .trim()
    .min(1)
    .default(DEFAULT_MODEL)
    .describe('the default model: an alias, an Anthropic name or a Bedrock id'),
  BEDROCK_ENDPOINT: z.enum(endpointKinds).default('global').describe('global, regional or in-region'),
  BEDROCK_ENDPOINTS: z
    .string()
    .trim()
    .min(1, 'is empty')
    .transform((kinds) => kinds.split(',').map((kind) => kind.trim()))
    .pipe(z.array(z.enum(endpointKinds)))
    .optional()
    .describe(
      'comma-separated endpoint kinds files may use, most preferred first; BEDROCK_ENDPOINT alone when unset',
    ),
  BEDROCK_REGIONS: z
    .string()
    .trim()
    .min(1, 'is empty')
    .transform((regions) => regions.split(',').map((region) => region.trim()))
    .optional()
    .describe(
      'comma-separated source regions files may call Bedrock from, BEDROCK_REGION first; it alone when unset',
    ),
  DEFAULT_MAX_TOKENS: positiveInteger('max_tokens for records that do not set it', 4096),
  ALLOWED_MODEL_IDS: z
    .string()
    .trim()
    .min(1, 'is empty')
    .transform((ids) => ids.split(',').map((id) => id.trim()))
    .optional()
    .describe('comma-separated Bedrock model ids records may call (the ones IAM allows); any when unset'),
};

export const retrySettings = {
  MAX_ATTEMPTS: positiveInteger('attempts in all for a retryable failure', DEFAULT_RETRY_POLICY.maxAttempts),
  LIMITED_ATTEMPTS: positiveInteger(
    'attempts in all for model timeouts and model errors',
    DEFAULT_RETRY_POLICY.limitedAttempts,
  ),
  BACKOFF_BASE_SECONDS: positiveInteger(
    'first backoff ceiling in seconds',
    DEFAULT_RETRY_POLICY.baseDelaySeconds,
  ),
  BACKOFF_MAX_SECONDS: positiveInteger(
    'largest backoff in seconds (SQS allows 43200)',
    DEFAULT_RETRY_POLICY.maxDelaySeconds,
  ).pipe(z.number().max(43_200, 'must be at most 43200, the SQS visibility limit')),
  LATER_DELAY_SECONDS: positiveInteger(
    'delay before retrying a quota error',
    DEFAULT_RETRY_POLICY.laterDelaySeconds,
  ),
  DAILY_QUOTA_WAIT_SECONDS: positiveInteger(
    "how long records wait when Bedrock's tokens-per-day quota is spent (SQS delays at most 900)",
    DEFAULT_RETRY_POLICY.dailyQuotaWaitSeconds,
  ).pipe(z.number().max(900, 'must be at most 900, the SQS message delay limit')),
};

export const quotaSettings = {
  TOKENS_PER_MINUTE: positiveInteger(
    'the Bedrock tokens-per-minute quota this pipeline may use, per model',
    DEFAULT_TOKENS_PER_MINUTE,
  ),
  OUTPUT_TOKEN_BURNDOWN: positiveInteger(
    'quota tokens each output token costs (5 for Claude 4 and later)',
    OUTPUT_TOKEN_BURNDOWN,
  ),
};

/** Where the worker's budget takes each pool's quota from. */
export const serviceQuotaSettings = {
  READ_SERVICE_QUOTAS: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((read) => read === 'true')
    .describe("true: each pool's quota is read from Service Quotas (TOKENS_PER_MINUTE where it cannot be)"),
  QUOTA_SHARE: z.coerce
    .number()
    .gt(0, 'must be above 0')
    .max(1, 'must be at most 1')
    .default(1)
    .describe('the part of each quota read from Service Quotas that the pipeline spends'),
};

export const storageSettings = {
  BUCKET_NAME: required('the bucket that holds inputs/ and outputs/'),
  LEDGER_TABLE_NAME: required('the DynamoDB job ledger table'),
  RETENTION_DAYS: positiveInteger(
    'days finished jobs and records stay in the ledger before DynamoDB TTL removes them',
    30,
  ),
};

export const queueSettings = {
  RECORD_QUEUE_URL: required('the URL of the SQS queue of records'),
  FINALIZE_QUEUE_URL: required('the URL of the SQS queue that starts the finalizer'),
};

export const laneSettings = {
  DEFAULT_LANE: z.enum(lanes).default(DEFAULT_LANE).describe('the lane of files that do not choose one'),
  DEFAULT_DEADLINE: deadlineHoursSchema
    .optional()
    .describe('the deadline of files that do not set one, e.g. 24h'),
  BATCH_ROLE_ARN: z
    .string()
    .trim()
    .startsWith('arn:', 'is not an IAM role ARN')
    .optional()
    .describe('the service role Bedrock batch jobs run as; without it every file runs on demand'),
  DEADLINE_QUEUE_URL: z
    .string()
    .trim()
    .min(1)
    .optional()
    .describe("the SQS queue of deadline alarms that wakes the batch watcher at a job's deadline"),
};

export const cacheSettings = {
  DEFAULT_CACHE: z
    .enum(['auto', 'off'])
    .default('auto')
    .describe("prompt caching of a file's shared prefix for files that do not choose: auto or off"),
};

export const tierSettings = {
  DEFAULT_TIER: z
    .enum(serviceTiers)
    .default(DEFAULT_SERVICE_TIER)
    .describe('the Bedrock service tier of files that do not choose: default, priority or flex'),
};

export const inputSettings = {
  MAX_ERROR_RATE: z.coerce
    .number()
    .min(0, 'must be at least 0')
    .max(1, 'must be at most 1')
    .default(DEFAULT_MAX_ERROR_RATE)
    .describe(
      "the part of a file's records that may be invalid before reading stops and its job fails, for files that do not set one",
    ),
  MAX_DECOMPRESSED_BYTES: positiveInteger(
    'the most a compressed input may decompress to before its job fails',
    DEFAULT_MAX_DECOMPRESSED_BYTES,
  ),
};

export const spendingSettings = {
  MAX_DAILY_COST_USD: z.coerce
    .number({ error: 'must be a number of US dollars' })
    .positive('must be above 0')
    .optional()
    .describe("the deployment's daily spending cap in US dollars (UTC days); no cap when unset"),
};

export const eventSettings = {
  EVENT_BUS_NAME: z.string().trim().min(1).default('default').describe('the bus completion events go to'),
};

export const workerRuntimeSettings = {
  LEASE_SECONDS: positiveInteger(
    'how long one attempt holds its record: longer than the worker timeout',
    960,
  ),
  SDK_MAX_ATTEMPTS: positiveInteger(
    'attempts the Bedrock client makes itself before the queue retries',
    RETRY_LAYERS.bedrockSdkAttempts,
  ),
  COUNT_TOKENS_ABOVE: positiveInteger(
    'records estimated above this many input tokens are counted exactly (CountTokens, free) before the budget reserves for them',
    COUNT_TOKENS_ABOVE,
  ),
};

/**
 * A function's settings schema from the groups above. When the group of Bedrock settings is in, the default
 * model is resolved for the region and endpoint at once, so a bad combination stops the cold start.
 */
export function settingsSchema<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.object(shape).superRefine((settings, ctx) => {
    const { BEDROCK_MODEL, BEDROCK_REGION, BEDROCK_ENDPOINT } = settings as Record<string, unknown>;
    if (typeof BEDROCK_MODEL !== 'string' || typeof BEDROCK_REGION !== 'string') return;
    try {
      resolveModel({
        model: BEDROCK_MODEL,
        region: BEDROCK_REGION,
        endpoint: BEDROCK_ENDPOINT as EndpointKind,
      });
    } catch (error) {
      if (!(error instanceof ModelSelectionError)) throw error;
      ctx.addIssue({ code: 'custom', path: ['BEDROCK_MODEL'], message: `is not usable: ${error.message}` });
    }
  });
}

export const enqueueSettings = settingsSchema({
  ...bedrockSettings,
  ...storageSettings,
  ...queueSettings,
  ...eventSettings,
  ...laneSettings,
  ...cacheSettings,
  ...tierSettings,
  ...inputSettings,
  TOKENS_PER_MINUTE: quotaSettings.TOKENS_PER_MINUTE,
});
/** The Message Batches API's function: a batch's options are checked against the deployment's file defaults. */
export const messageBatchesSettings = settingsSchema({
  ...bedrockSettings,
  ...storageSettings,
  ...laneSettings,
  ...cacheSettings,
  ...tierSettings,
  ...inputSettings,
  MESSAGE_BATCHES_SHARED: z
    .enum(['true', 'false'])
    .default('false')
    .describe('true: every caller sees every batch; false: each IAM principal sees the batches it created'),
});
export const batchWatcherSettings = settingsSchema({
  ...bedrockSettings,
  ...storageSettings,
  ...queueSettings,
  BATCH_ROLE_ARN: laneSettings.BATCH_ROLE_ARN.unwrap(),
  DEADLINE_QUEUE_URL: laneSettings.DEADLINE_QUEUE_URL,
  // Collected batch records are priced, and count toward the day's spend, when their part is collected.
  ...spendingSettings,
});
export const workerSettings = settingsSchema({
  ...bedrockSettings,
  ...retrySettings,
  ...quotaSettings,
  ...serviceQuotaSettings,
  ...storageSettings,
  ...queueSettings,
  ...workerRuntimeSettings,
  ...spendingSettings,
});
export const finalizerSettings = settingsSchema({
  ...storageSettings,
  ...eventSettings,
  FINALIZE_QUEUE_URL: queueSettings.FINALIZE_QUEUE_URL,
  // The manifest reports each pool's quota as the worker spends it.
  ...bedrockSettings,
  TOKENS_PER_MINUTE: quotaSettings.TOKENS_PER_MINUTE,
  ...serviceQuotaSettings,
});
export const sweeperSettings = settingsSchema({
  LEDGER_TABLE_NAME: storageSettings.LEDGER_TABLE_NAME,
  RECORD_DLQ_URL: required("the URL of the record queue's dead-letter queue"),
  FINALIZE_QUEUE_URL: queueSettings.FINALIZE_QUEUE_URL,
  RESUME_AFTER_MINUTES: positiveInteger(
    'minutes without progress after which a stopped step (reading, finalizing, the completion event) is taken up again: longer than a function can run',
    RESUME_AFTER_MINUTES,
  ),
  STUCK_AFTER_MINUTES: positiveInteger('minutes without progress after which a job is reported stuck', 30),
  ...eventSettings,
});

export function retryPolicyOf(settings: { [Key in keyof typeof retrySettings]: number }): RetryPolicy {
  return {
    maxAttempts: settings.MAX_ATTEMPTS,
    limitedAttempts: settings.LIMITED_ATTEMPTS,
    baseDelaySeconds: settings.BACKOFF_BASE_SECONDS,
    maxDelaySeconds: settings.BACKOFF_MAX_SECONDS,
    laterDelaySeconds: settings.LATER_DELAY_SECONDS,
    dailyQuotaWaitSeconds: settings.DAILY_QUOTA_WAIT_SECONDS,
  };
}

/** Parses the environment against `schema`, or throws one ConfigurationError listing every problem. */
export function loadConfig<Schema extends z.ZodType>(
  schema: Schema,
  env: Readonly<Record<string, string | undefined>> = process.env,
): z.output<Schema> {
  useDeploymentCatalog(env);
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const variable = String(issue.path[0] ?? '(settings)');
    const help = describedBy(schema, variable);
    return `${variable} ${issue.message}${help === undefined ? '' : ` (${help})`}`;
  });
  throw new ConfigurationError(problems);
}

/**
 * The models a deployment adds to the catalog or changes in it (the stack's `catalog` prop), as JSON: merged
 * over the built-in catalog before the other settings are read, so a setting may name a model it adds.
 */
export const USER_CATALOG_SETTING = 'CATALOG_MODELS';

/**
 * `true` when the deployment runs model ids of Bedrock's form that the catalog does not list (the stack's
 * `allowUnknownModels` prop): read with the catalog, before the other settings, for the same reason.
 */
export const ALLOW_UNKNOWN_MODELS_SETTING = 'ALLOW_UNKNOWN_MODELS';

/** The process's catalog, as the deployment gives it: its own models merged in, unknown model ids allowed or not. */
function useDeploymentCatalog(env: Readonly<Record<string, string | undefined>>): void {
  const text = env[USER_CATALOG_SETTING];
  const allow = env[ALLOW_UNKNOWN_MODELS_SETTING];
  if (text === undefined && allow === undefined) return;
  if (allow !== undefined && allow !== 'true' && allow !== 'false')
    throw new ConfigurationError([
      `${ALLOW_UNKNOWN_MODELS_SETTING} must be true or false (the stack's allowUnknownModels prop)`,
    ]);
  const catalog =
    text === undefined ? defaultCatalog : mergeCatalog(parsedCatalog(text), `in ${USER_CATALOG_SETTING}`);
  useCatalog(catalog.withUnknownModels(allow === 'true'));
}

function parsedCatalog(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigurationError([`${USER_CATALOG_SETTING} is not JSON (the stack's catalog prop, as JSON)`]);
  }
}

function describedBy(schema: z.ZodType, variable: string): string | undefined {
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape;
  return shape?.[variable]?.description;
}

/**
 * A function's environment as the stack writes it: a string for every setting of its schema (optional where
 * the schema has a default), so the stack cannot leave out or misname one.
 */
export type EnvironmentOf<Schema extends z.ZodType> = { [Name in keyof z.input<Schema>]: string };
