import type { Catalog, CatalogModel } from '../../shared/catalog/catalog.ts';
import { ModelSelectionError } from '../../shared/errors.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import { MESSAGES_BODY_FIELDS, messagesBodyProblem } from '../../shared/request/messages-rules.ts';
import { countInputTokens } from './tokens.ts';
import { WireError } from './wire-errors.ts';

export interface ValidInvocation {
  readonly model: CatalogModel;
  readonly modelId: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly maxTokens: number;
  /** The context window this request may use: the 1M window only with the beta (or a native 1M model). */
  readonly window: number;
}

const INVALID_MODEL = 'The provided model identifier is invalid.';
const MAX_CACHE_BREAKPOINTS = 4;
/** The window the stand-in gives a model its catalog does not list: a new model's, natively 1M. */
const UNKNOWN_MODEL_WINDOW = 1_000_000;

/**
 * Checks a model id the way Bedrock does: an exact id (no aliases), with a prefix the region may call, for
 * a model offered there. The rules are the domain's catalog and resolver, so the stand-in and the pipeline
 * cannot drift apart.
 */
export function identifyModel(modelId: string, region: string, catalog: Catalog): CatalogModel {
  const bareId = modelId.replace(/^(global|[a-z]+)\.(?=anthropic\.)/, '');
  // Bedrock knows models the catalog may not: with unknown models allowed, the stand-in serves any id of
  // Bedrock's form, as Bedrock serves a model the day it ships.
  const model =
    catalog.models.find((entry) => entry.bedrockId === bareId) ??
    (catalog.allowsUnknownModels ? catalog.findModel(bareId) : undefined);
  if (model === undefined) throw new WireError('ValidationException', INVALID_MODEL);
  try {
    // A bare id is a call in the region itself, as Bedrock takes it.
    resolveModel(
      { model: modelId, region, ...(modelId === bareId ? { endpoint: 'in-region' } : {}) },
      catalog,
    );
  } catch (error) {
    if (!(error instanceof ModelSelectionError)) throw error;
    // Bedrock's own words for a bare id of a model it serves through inference profiles only.
    if (error.code === 'PROFILE_ONLY')
      throw new WireError(
        'ValidationException',
        `Invocation of model ID ${bareId} with on-demand throughput isn’t supported. Retry your request with the ID or ARN of an inference profile that contains this model.`,
      );
    throw new WireError('ValidationException', INVALID_MODEL);
  }
  return model;
}

export function validateInvocation(
  modelId: string,
  raw: Buffer,
  region: string,
  catalog: Catalog,
): ValidInvocation {
  const model = identifyModel(modelId, region, catalog);
  const body = parseBody(raw);
  for (const key of ['anthropic_version', 'max_tokens', 'messages']) {
    if (!Object.hasOwn(body, key)) throw malformed(`#: required key [${key}] not found`);
  }
  for (const key of Object.keys(body)) {
    if (!(MESSAGES_BODY_FIELDS as readonly string[]).includes(key))
      throw malformed(`#: extraneous key [${key}] is not permitted`);
  }
  if (!catalog.acceptedAnthropicVersions.has(body.anthropic_version as string)) {
    throw malformed(
      `#/anthropic_version: ${JSON.stringify(body.anthropic_version)} is not a supported value`,
    );
  }
  const { max_tokens: maxTokens, messages } = body;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    throw malformed('#/max_tokens: expected a positive integer');
  }
  if (maxTokens > model.maxOutputTokens) {
    throw new WireError(
      'ValidationException',
      `max_tokens: ${maxTokens} > ${model.maxOutputTokens}, which is the maximum allowed number of output tokens for ${model.anthropicNames[0]}`,
    );
  }
  if (!Array.isArray(messages) || messages.length === 0) {
    throw malformed('#/messages: expected at least one message');
  }
  const betas = body.anthropic_beta ?? [];
  if (!Array.isArray(betas) || betas.some((beta) => typeof beta !== 'string')) {
    throw malformed('#/anthropic_beta: expected an array of strings');
  }
  if (betas.some((beta) => !catalog.allowedBetas.has(beta as string))) {
    throw new WireError('ValidationException', 'invalid beta flag');
  }
  // The Messages API's own rules, which Bedrock applies after the schema: roles, blocks, ranges, tools.
  const broken = messagesBodyProblem(body);
  if (broken !== undefined) throw new WireError('ValidationException', `${broken.path}: ${broken.message}`);
  assertCacheBreakpoints(body, model);
  const { longContext } = model;
  const window =
    longContext.mode === 'native' || (longContext.mode === 'beta' && betas.includes(catalog.longContextBeta))
      ? longContext.window
      : longContext.mode === 'unknown'
        ? UNKNOWN_MODEL_WINDOW
        : catalog.standardContextWindow;
  return { model, modelId, body, maxTokens, window };
}

/** At most 4 cache_control breakpoints, each with a TTL the model takes, longer TTLs first. */
function assertCacheBreakpoints(body: Record<string, unknown>, model: CatalogModel): void {
  const { cachePoints } = countInputTokens(body as unknown as MessagesBody);
  if (cachePoints.length > MAX_CACHE_BREAKPOINTS) {
    throw new WireError(
      'ValidationException',
      `A maximum of ${MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found ${cachePoints.length}.`,
    );
  }
  const unsupported = cachePoints.find(
    (point) => !(model.cacheTtls as readonly string[]).includes(point.ttl),
  );
  if (unsupported !== undefined) {
    throw new WireError(
      'ValidationException',
      `cache_control.ttl: "${unsupported.ttl}" is not supported for this model; use ${model.cacheTtls.join(' or ')}.`,
    );
  }
  const short = cachePoints.findIndex((point) => point.ttl !== '1h');
  if (short !== -1 && cachePoints.slice(short).some((point) => point.ttl === '1h')) {
    throw new WireError(
      'ValidationException',
      'cache_control.ttl: a "1h" block may not come after a "5m" one; longer TTLs must come first.',
    );
  }
}

function parseBody(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw malformed((error as Error).message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed('#: expected type: JSONObject');
  }
  return value as Record<string, unknown>;
}

function malformed(detail: string): WireError {
  return new WireError(
    'ValidationException',
    `Malformed input request: ${detail}, please reformat your input and try again.`,
  );
}
