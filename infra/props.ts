import { z } from 'zod';
import { endpointKinds } from '../shared/catalog/catalog.ts';
import { ConfigurationError, ModelSelectionError } from '../shared/errors.ts';
import { type ResolvedModel, resolveModel } from '../shared/models/resolve-model.ts';
import { DEFAULT_MODEL } from '../shared/pipeline/job.ts';

/** What a deployment chooses; everything has a secure, working default except the Bedrock region. */
const pipelinePropsSchema = z
  .object({
    /** The region Bedrock is called in. Never defaulted (the brief's "forgetting the region" mistake). */
    bedrockRegion: z.string().min(1),
    /** The model for files that do not name one. */
    defaultModel: z.string().min(1).default(DEFAULT_MODEL),
    /** Every model files may use; IAM allows exactly these. Defaults to the default model alone. */
    allowedModels: z.array(z.string().min(1)).optional(),
    endpoint: z.enum(endpointKinds).default('global'),
    /** The Bedrock tokens-per-minute quota the pipeline may spend, per model. */
    tokensPerMinute: z.number().int().positive().default(400_000),
    defaultMaxTokens: z.number().int().positive().default(4_096),
    /** Alarms notify this address (a new SNS topic) and/or this existing topic. */
    alarmEmail: z.email().optional(),
    alarmTopicArn: z.string().startsWith('arn:aws:sns:').optional(),
    /** A customer-managed KMS key for the bucket, queues and table (AWS-managed encryption otherwise). */
    useKms: z.boolean().default(false),
    workerTimeoutSeconds: z.number().int().min(30).max(900).default(300),
    workerBatchSize: z.number().int().min(1).max(10).default(10),
    stuckAfterMinutes: z.number().int().positive().default(30),
    /** Days before finished jobs' intermediate objects and ledger items expire. */
    retentionDays: z.number().int().positive().default(30),
  })
  .strict();

export type PipelinePropsInput = z.input<typeof pipelinePropsSchema>;

export interface PipelineSettings extends z.output<typeof pipelinePropsSchema> {
  readonly allowedModels: string[];
  /** Each allowed model resolved for the region and endpoint: the ids IAM and the functions use. */
  readonly resolvedModels: ResolvedModel[];
  /** Worker invocations at once: enough to spend the quota, never more than Lambda allows. */
  readonly workerMaxConcurrency: number;
}

const OUTPUT_BURNDOWN = 5;

/** Validates the deployment's choices (a bad combination throws with the catalog's fix) and derives the rest. */
export function pipelineSettings(input: PipelinePropsInput): PipelineSettings {
  const parsed = pipelinePropsSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigurationError(
      parsed.error.issues.map((issue) => `${issue.path.join('.') || 'props'}: ${issue.message}`),
    );
  }
  const props = parsed.data;
  const allowedModels = props.allowedModels ?? [props.defaultModel];
  const problems: string[] = [];
  const resolve = (model: string): ResolvedModel | undefined => {
    try {
      return resolveModel({ model, region: props.bedrockRegion, endpoint: props.endpoint });
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
  if (problems.length > 0) throw new ConfigurationError(problems);
  // A record holds max_tokens x 5 of the minute's budget while it runs; about that many records in flight
  // spend the quota, and the shared budget stops any excess before Bedrock sees it.
  const recordsInFlight = props.tokensPerMinute / (props.defaultMaxTokens * OUTPUT_BURNDOWN);
  const workerMaxConcurrency = Math.min(
    1_000,
    Math.max(2, Math.ceil(recordsInFlight / props.workerBatchSize)),
  );
  return { ...props, allowedModels, resolvedModels, workerMaxConcurrency };
}
