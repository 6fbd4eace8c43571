import { z } from 'zod';
import { parseDeadlineHours } from '../shared/batch/lane.ts';
import { drainSeconds } from '../shared/budget/throughput.ts';
import {
  DEFAULT_TYPICAL_RECORD,
  DEFAULT_WORKER_TIMEOUT_SECONDS,
  quotaShapeOf,
  WORKER_BATCH,
  type WorkerShape,
  workerShapeFor,
} from '../shared/budget/worker-shape.ts';
import {
  type Catalog,
  catalogInUse,
  DEFAULT_MODEL,
  type EndpointKind,
  endpointKinds,
} from '../shared/catalog/catalog.ts';
import { mergeCatalog, userCatalogSchema } from '../shared/catalog/user-catalog.ts';
import {
  ALLOW_UNKNOWN_MODELS_SETTING,
  type bedrockSettings,
  DEFAULT_TOKENS_PER_MINUTE,
  type EnvironmentOf,
  type queueSettings,
  type spendingSettings,
  USER_CATALOG_SETTING,
} from '../shared/config.ts';
import { DEFAULT_LANE, lanes } from '../shared/contract/lanes.ts';
import { DEFAULT_SERVICE_TIER, serviceTiers } from '../shared/contract/service-tiers.ts';
import { ConfigurationError, ModelSelectionError, PipelineError } from '../shared/errors.ts';
import { DEFAULT_MAX_ERROR_RATE } from '../shared/input/error-rate.ts';
import { DEFAULT_MAX_DECOMPRESSED_BYTES } from '../shared/input/file-check.ts';
import { type ResolvedModel, resolveModel } from '../shared/models/resolve-model.ts';
import { poolsFor } from '../shared/quotas/pools.ts';
import type { BedrockBatchPipelineProps } from './bedrock-batch-pipeline-props.ts';
import { checkBucketChoice, escapeHatchSchema } from './escape-hatches.ts';

/** What a deployment chooses; everything has a secure, working default except the Bedrock region. */
const pipelinePropsSchema = z
  .object({
    /** The region Bedrock is called in. Never defaulted: a default region may not offer the model. */
    bedrockRegion: z.string().min(1),
    /** The model for files that do not name one. */
    defaultModel: z.string().min(1).default(DEFAULT_MODEL),
    /** Every model files may use; IAM allows exactly these. Defaults to the default model alone. */
    allowedModels: z.array(z.string().min(1)).readonly().optional(),
    endpoint: z.enum(endpointKinds).default('global'),
    /** Endpoint kinds files may use too, after `endpoint`, in order of preference. */
    additionalEndpoints: z.array(z.enum(endpointKinds)).readonly().optional(),
    /** Source regions files may call Bedrock from too, besides `bedrockRegion`. */
    additionalBedrockRegions: z.array(z.string().min(1)).readonly().optional(),
    /** The part of each quota read from Service Quotas that the pipeline spends. */
    quotaShare: z.number().gt(0).max(1).default(1),
    /** The Bedrock tokens-per-minute quota the pipeline may spend, per model and pool. */
    tokensPerMinute: z.number().int().positive().default(DEFAULT_TOKENS_PER_MINUTE),
    defaultMaxTokens: z.number().int().positive().default(4_096),
    /** Alarms notify this address (a new SNS topic) and/or this existing topic. */
    alarmEmail: z.email().optional(),
    alarmTopicArn: z.string().startsWith('arn:aws:sns:').optional(),
    /** Each job's end (completed, canceled, superseded, failed) is sent to this address and/or this topic. */
    notifyEmail: z.email().optional(),
    notifyTopicArn: z.string().startsWith('arn:aws:sns:').optional(),
    /** A customer-managed KMS key for the bucket, queues and table (AWS-managed encryption otherwise). */
    useKms: z.boolean().default(false),
    ...escapeHatchSchema,
    workerTimeoutSeconds: z.number().int().min(30).max(900).default(DEFAULT_WORKER_TIMEOUT_SECONDS),
    /** Records per worker invocation; they share one budget reservation and one settlement. */
    workerBatchSize: z.number().int().min(1).max(100).default(WORKER_BATCH.size),
    /**
     * A record as the quota sees it, to size the workers and the alarms: input and output tokens, and how
     * long Bedrock takes to answer it.
     */
    typicalRecord: z
      .strictObject({
        inputTokens: z.number().int().positive(),
        outputTokens: z.number().int().positive(),
        latencySeconds: z.number().positive(),
      })
      .default(DEFAULT_TYPICAL_RECORD),
    /** The largest file expected: the queue-age alarm allows for the time the quota takes to drain it. */
    largestFileRecords: z.number().int().positive().default(100_000),
    stuckAfterMinutes: z.number().int().positive().default(30),
    /** Days before finished jobs' intermediate objects and ledger items expire. */
    retentionDays: z.number().int().positive().default(30),
    /** The lane of files that do not choose one: on-demand, batch (Bedrock batch inference) or auto. */
    defaultLane: z.enum(lanes).default(DEFAULT_LANE),
    /** Prompt caching of a file's shared prefix for files that do not choose (file option cache=off|auto). */
    promptCache: z.enum(['auto', 'off']).default('auto'),
    /** The Bedrock service tier of files that do not choose one (file option tier). */
    serviceTier: z.enum(serviceTiers).default(DEFAULT_SERVICE_TIER),
    /** The deadline of files that do not set one (30m, 6h, 2d): batch jobs still running then are stopped. */
    defaultDeadline: z
      .string()
      .refine((text) => parseDeadlineHours(text) !== undefined, 'must be a duration such as 30m, 6h or 2d')
      .optional(),
    /** The part of a file's records that may be invalid before its job stops reading and fails (file option max-error-rate). */
    maxErrorRate: z.number().min(0).max(1).default(DEFAULT_MAX_ERROR_RATE),
    /** The most a compressed input may decompress to: a small gzip of gigabytes is refused, not read for hours. */
    maxDecompressedBytes: z.number().int().positive().default(DEFAULT_MAX_DECOMPRESSED_BYTES),
    /** The deployment's daily spending cap in US dollars (UTC days): jobs stop once a day's cost reaches it. */
    maxDailyCost: z.number().positive().optional(),
    /** Models to add to the catalog or change in it, in the catalog's own form. */
    catalog: userCatalogSchema.optional(),
    /** Model ids of Bedrock's form that the catalog does not list may be allowed and run. */
    allowUnknownModels: z.boolean().default(false),
    /** Anthropic's Message Batches API over the pipeline, behind IAM authorization. */
    messageBatchesApi: z
      .union([
        z.boolean(),
        z.strictObject({
          shareAcrossCallers: z.boolean().optional(),
          retentionDays: z.number().int().positive().optional(),
          rateLimit: z.number().positive().optional(),
          burstLimit: z.number().int().positive().optional(),
        }),
      ])
      .default(false)
      .transform((choice) =>
        choice === false
          ? undefined
          : {
              shareAcrossCallers: choice === true ? false : (choice.shareAcrossCallers ?? false),
              retentionDays: choice === true ? 29 : (choice.retentionDays ?? 29),
              throttle: {
                rateLimit: choice === true ? 50 : (choice.rateLimit ?? 50),
                burstLimit: choice === true ? 100 : (choice.burstLimit ?? 100),
              },
            },
      ),
  })
  .strict()
  .superRefine(checkBucketChoice);

// The schema above validates exactly the construct's props, documented for its users in their interface.
// Fails to compile when the documented props and the schema drift apart: a prop one has and the other lacks,
// or a documented value the schema would not take.
true satisfies SameInput<BedrockBatchPipelineProps, z.input<typeof pipelinePropsSchema>>;

type SameInput<Props, Schema> = [Props] extends [Schema]
  ? [keyof Props] extends [keyof Schema]
    ? [keyof Schema] extends [keyof Props]
      ? true
      : never
    : never
  : never;

export interface PipelineSettings extends z.output<typeof pipelinePropsSchema> {
  readonly allowedModels: readonly string[];
  /** Each allowed model resolved for the home region and endpoint: what batch jobs are submitted for. */
  readonly resolvedModels: ResolvedModel[];
  /** The endpoint kinds files may use, `endpoint` first, and the source regions, `bedrockRegion` first. */
  readonly endpoints: readonly EndpointKind[];
  readonly bedrockRegions: readonly string[];
  /** Each allowed model in every quota pool files may use: the ids and regions the worker calls, and IAM allows. */
  readonly poolModels: ResolvedModel[];
  /** No quota was given: the worker reads each pool's from Service Quotas. */
  readonly readServiceQuotas: boolean;
  /** The worker's invocations at once, batch, timeout, visibility and lease, derived from the quota. */
  readonly worker: WorkerShape;
  /** How old the oldest record may get before the queue-age alarm: the largest file's drain time, and slack. */
  readonly oldestRecordAlarmSeconds: number;
}

/** SQS keeps a message at most 14 days: a file must drain through the quota well within that. */
const QUEUE_RETENTION_SECONDS = 14 * 86_400;

/** Validates the deployment's choices (a bad combination throws with the catalog's fix) and derives the rest. */
export function pipelineSettings(input: BedrockBatchPipelineProps): PipelineSettings {
  const parsed = pipelinePropsSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigurationError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || 'props'}: ${issue.message}`),
    );
  }
  const props = parsed.data;
  const catalog = catalogOf(props.catalog, props.allowUnknownModels);
  const allowedModels = props.allowedModels ?? [props.defaultModel];
  const problems: string[] = [];
  const resolve = (model: string): ResolvedModel | undefined => {
    try {
      return resolveModel({ model, region: props.bedrockRegion, endpoint: props.endpoint }, catalog);
    } catch (error) {
      if (!(error instanceof ModelSelectionError)) throw error;
      problems.push(`model ${model}: ${error.message}`);
      return undefined;
    }
  };
  const allowed = allowedModels.map(resolve).filter((model): model is ResolvedModel => model !== undefined);
  const resolvedModels = allowed.filter(
    (model, index) => allowed.findIndex((other) => other.modelId === model.modelId) === index,
  );
  const defaultResolved = resolve(props.defaultModel);
  if (
    defaultResolved !== undefined &&
    !resolvedModels.some((model) => model.modelId === defaultResolved.modelId)
  ) {
    problems.push(`defaultModel ${props.defaultModel} must be one of allowedModels`);
  }
  const endpoints = [...new Set([props.endpoint, ...(props.additionalEndpoints ?? [])])];
  const bedrockRegions = [...new Set([props.bedrockRegion, ...(props.additionalBedrockRegions ?? [])])];
  const poolModels = resolvedModels.flatMap((resolved) => {
    try {
      return poolsFor(resolved.model, { endpoints, regions: bedrockRegions }, catalog).pools.map((pool) =>
        resolveModel({ model: pool.modelId, region: pool.region, endpoint: pool.endpoint }, catalog),
      );
    } catch (error) {
      if (!(error instanceof ModelSelectionError)) throw error;
      problems.push(`additionalBedrockRegions: ${error.message}`);
      return [];
    }
  });
  if (problems.length > 0) throw new ConfigurationError(problems);
  const drain = drainSeconds(quotaShapeOf(props), props.largestFileRecords);
  // Records go to the queue in input order but come out in no strict order: allow half as long again.
  const oldestRecordAlarmSeconds = Math.max(3_600, Math.ceil(drain * 1.5));
  if (oldestRecordAlarmSeconds > QUEUE_RETENTION_SECONDS) {
    throw new ConfigurationError([
      `largestFileRecords: ${props.largestFileRecords} typical records take ${Math.round(drain / 86_400)} days at ${props.tokensPerMinute} tokens a minute, longer than SQS keeps a message (14 days); raise the quota or split such files`,
    ]);
  }
  // The workers are sized for every pool of the default model together: a file may spread over all of them.
  const defaultPools = poolModels.filter((pool) => pool.model.key === defaultResolved?.model.key).length;
  const worker = workerShapeFor({
    tokensPerMinute: props.tokensPerMinute * Math.max(1, defaultPools),
    typicalRecord: props.typicalRecord,
    timeoutSeconds: props.workerTimeoutSeconds,
    batchSize: props.workerBatchSize,
  });
  return {
    ...props,
    readServiceQuotas: input.tokensPerMinute === undefined,
    allowedModels,
    resolvedModels,
    endpoints,
    bedrockRegions,
    poolModels,
    worker,
    oldestRecordAlarmSeconds,
  };
}

/**
 * The most a user catalog may take of a function's settings, which Lambda holds to 4 KB in all: the rest is
 * the pipeline's own.
 */
const USER_CATALOG_BYTES = 2_500;

/**
 * The catalog the deployment's models are resolved in: the built-in one, with the `catalog` prop's models,
 * allowing unknown model ids when `allowUnknownModels` says so.
 */
function catalogOf(user: PipelineSettings['catalog'], allowUnknownModels: boolean): Catalog {
  return catalogWithEntries(user).withUnknownModels(allowUnknownModels);
}

function catalogWithEntries(user: PipelineSettings['catalog']): Catalog {
  if (user === undefined) return catalogInUse();
  const bytes = Buffer.byteLength(JSON.stringify(user));
  if (bytes > USER_CATALOG_BYTES)
    throw new ConfigurationError([
      `catalog: ${bytes} bytes as JSON, more than the ${USER_CATALOG_BYTES} a function's settings can hold beside the pipeline's; give only the fields that change`,
    ]);
  try {
    return mergeCatalog(user, 'in the catalog prop');
  } catch (error) {
    if (error instanceof PipelineError) throw new ConfigurationError([`catalog: ${error.message}`]);
    throw error;
  }
}

/**
 * The catalog prop and allowUnknownModels as every function reads them at its cold start (see
 * USER_CATALOG_SETTING and ALLOW_UNKNOWN_MODELS_SETTING).
 */
export function userCatalogEnvironment(settings: PipelineSettings): Record<string, string> {
  return {
    ...(settings.catalog === undefined ? {} : { [USER_CATALOG_SETTING]: JSON.stringify(settings.catalog) }),
    ...(settings.allowUnknownModels ? { [ALLOW_UNKNOWN_MODELS_SETTING]: 'true' } : {}),
  };
}

/** The Bedrock settings of the functions that build and send requests (enqueue checks, the worker calls). */
export function bedrockEnvironment(
  settings: PipelineSettings,
): EnvironmentOf<z.ZodObject<typeof bedrockSettings>> {
  return {
    BEDROCK_REGION: settings.bedrockRegion,
    BEDROCK_MODEL: settings.defaultModel,
    BEDROCK_ENDPOINT: settings.endpoint,
    ...(settings.endpoints.length > 1 ? { BEDROCK_ENDPOINTS: settings.endpoints.join(',') } : {}),
    ...(settings.bedrockRegions.length > 1 ? { BEDROCK_REGIONS: settings.bedrockRegions.join(',') } : {}),
    DEFAULT_MAX_TOKENS: String(settings.defaultMaxTokens),
    ALLOWED_MODEL_IDS: [...new Set(settings.poolModels.map((model) => model.modelId))].join(','),
  };
}

/** Where the functions that spend or report the pools' quotas take them from (the worker, the finalizer). */
export function quotaEnvironment(settings: PipelineSettings) {
  return {
    TOKENS_PER_MINUTE: String(settings.tokensPerMinute),
    READ_SERVICE_QUOTAS: settings.readServiceQuotas ? 'true' : 'false',
    QUOTA_SHARE: String(settings.quotaShare),
  } as const;
}

/** The daily spending cap, for the functions that count completed records' cost (the worker, the batch watcher). */
export function spendingEnvironment(
  settings: PipelineSettings,
): EnvironmentOf<z.ZodObject<typeof spendingSettings>> {
  return settings.maxDailyCost === undefined ? {} : { MAX_DAILY_COST_USD: String(settings.maxDailyCost) };
}

/** Where a function that reads the input and queues records sends them: the record and finalize queues. */
export function queueEnvironment(
  recordQueue: { readonly queueUrl: string },
  finalizeQueue: { readonly queueUrl: string },
): EnvironmentOf<z.ZodObject<typeof queueSettings>> {
  return { RECORD_QUEUE_URL: recordQueue.queueUrl, FINALIZE_QUEUE_URL: finalizeQueue.queueUrl };
}
