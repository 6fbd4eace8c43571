import { cacheBreakpointProblem } from '../caching/breakpoint.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { catalogInUse, type EndpointKind } from '../catalog/catalog.ts';
import { DEFAULT_SERVICE_TIER, type ServiceTier } from '../contract/service-tiers.ts';
import { RecordRejectedError } from '../errors.ts';
import type { PromptRecord } from '../input/records.ts';
import {
  assertModelAllowed,
  endpointNamedBy,
  type ResolvedModel,
  resolveModel,
} from '../models/resolve-model.ts';
import { routeContext } from './long-context.ts';
import { estimateInputTokens, type TokenEstimate } from './token-estimate.ts';

/** Settings a job gives every record that does not say otherwise. */
export interface JobModelSettings {
  readonly model: string;
  readonly region: string;
  readonly endpoint?: EndpointKind | undefined;
  readonly defaultMaxTokens: number;
  readonly allowedModelIds?: readonly string[] | undefined;
  readonly tier?: ServiceTier | undefined;
}

/** Everything needed to call InvokeModel for one record, decided before any call is made. */
export interface Invocation {
  readonly resolved: ResolvedModel;
  /** The InvokeModel `modelId`. */
  readonly modelId: string;
  /** The InvokeModel body. Betas travel inside it; there are deliberately no headers to set. */
  readonly body: Readonly<Record<string, unknown>>;
  /** `body` serialised once, as it is sent. */
  readonly bodyJson: string;
  readonly maxTokens: number;
  readonly estimate: TokenEstimate;
  readonly longContext: boolean;
  /** The service tier the job asks for. */
  readonly tier: ServiceTier;
}

/**
 * Turns a record into its InvokeModel call: resolves the model for the job's region and endpoint, applies the
 * default `max_tokens`, strips fields Bedrock rejects, checks betas against Bedrock's allow-list, adds the 1M
 * beta when the input may need it, and checks the body limit. Throws ModelSelectionError or
 * RecordRejectedError with the fix in the message.
 */
export function buildInvocation(
  record: Pick<PromptRecord, 'body' | 'modelOverride'>,
  job: JobModelSettings,
  catalog: Catalog = catalogInUse(),
): Invocation {
  const named = record.modelOverride ?? job.model;
  const resolved = resolveModel(
    { model: named, region: job.region, endpoint: endpointNamedBy(named, catalog) ?? job.endpoint },
    catalog,
  );
  assertModelAllowed(resolved, job.allowedModelIds);
  const { model } = resolved;
  const maxTokens = record.body.max_tokens ?? job.defaultMaxTokens;
  assertMaxTokensFits(maxTokens, model);
  const userBetas = record.body.anthropic_beta ?? [];
  assertBetasAccepted(userBetas, catalog);
  const breakpoints = cacheBreakpointProblem(record.body, model.cacheTtls);
  if (breakpoints !== undefined) {
    throw new RecordRejectedError(breakpoints.code, breakpoints.message, { fix: breakpoints.fix });
  }

  const estimate = estimateInputTokens(record.body);
  const route = routeContext(model, estimate, maxTokens, catalog);
  const betas = [...new Set([...userBetas, ...(route.beta === undefined ? [] : [route.beta])])];

  const { anthropic_version: _ignored, anthropic_beta: _replaced, ...fields } = record.body;
  const passedThrough = Object.fromEntries(
    Object.entries(fields).filter(([field]) => !catalog.bodyFieldsBedrockRejects.includes(field)),
  );
  const body = {
    anthropic_version: catalog.anthropicVersion,
    ...(betas.length > 0 ? { anthropic_beta: betas } : {}),
    ...passedThrough,
    max_tokens: maxTokens,
  };
  const bodyJson = JSON.stringify(body);
  assertWithinBodyLimit(bodyJson, catalog);
  return {
    resolved,
    modelId: resolved.modelId,
    body,
    bodyJson,
    maxTokens,
    estimate,
    longContext: route.longContext,
    tier: job.tier ?? DEFAULT_SERVICE_TIER,
  };
}

function assertMaxTokensFits(maxTokens: number, model: ResolvedModel['model']): void {
  if (maxTokens <= model.maxOutputTokens) return;
  throw new RecordRejectedError(
    'MAX_TOKENS_TOO_LARGE',
    `max_tokens ${maxTokens} is more than ${model.displayName} can produce (${model.maxOutputTokens}).`,
    {
      fix: `Set max_tokens to ${model.maxOutputTokens} or less: an oversized max_tokens also burns token quota.`,
    },
  );
}

function assertBetasAccepted(betas: readonly string[], catalog: Catalog): void {
  const unknownBeta = betas.find((beta) => !catalog.allowedBetas.has(beta));
  if (unknownBeta === undefined) return;
  throw new RecordRejectedError('UNKNOWN_BETA', `Bedrock does not accept the beta "${unknownBeta}".`, {
    fix: `Remove it from anthropic_beta; Bedrock accepts ${[...catalog.allowedBetas].join(', ')}.`,
  });
}

function assertWithinBodyLimit(bodyJson: string, catalog: Catalog): void {
  const bodyBytes = Buffer.byteLength(bodyJson, 'utf8');
  if (bodyBytes <= catalog.requestBodyLimitBytes) return;
  throw new RecordRejectedError(
    'BODY_TOO_LARGE',
    `The request body is ${bodyBytes.toLocaleString('en-US')} bytes, over Bedrock's ${catalog.requestBodyLimitBytes.toLocaleString('en-US')}-byte limit.`,
    { fix: 'Split the document or send fewer attachments per record.' },
  );
}
