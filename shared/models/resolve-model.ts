import {
  type Catalog,
  type CatalogModel,
  catalogInUse,
  type EndpointKind,
  type Geography,
} from '../catalog/catalog.ts';
import { ModelSelectionError } from '../errors.ts';

export interface ModelSelection {
  /** A full id (`global.anthropic.claude-opus-4-6-v1`), a bare id, an alias (`opus-4.6`) or an Anthropic API name. */
  readonly model: string;
  /** The AWS region the calls are made in. Never defaulted: a default region may not offer the model. */
  readonly region: string | undefined;
  /**
   * The endpoint policy. When set, a prefixed id must agree with it (a data-residency setting must not be
   * bypassed by one line's `global.` id); when unset, the id's prefix decides, and `global` otherwise.
   */
  readonly endpoint?: EndpointKind | undefined;
}

export interface ResolvedModel {
  readonly model: CatalogModel;
  readonly endpoint: EndpointKind;
  readonly region: string;
  readonly geography: Geography;
  /** The id to pass to InvokeModel: `global.<id>`, `<geo>.<id>` or the bare `<id>`. */
  readonly modelId: string;
}

const DEFAULT_ENDPOINT: EndpointKind = 'global';

export function resolveModel(selection: ModelSelection, catalog: Catalog = catalogInUse()): ResolvedModel {
  const { region, geography: narrowest } = requireRegion(selection.region, catalog);
  const { model, prefix } = identifyModel(selection.model.trim(), catalog);
  const regionGeographies = catalog.geographiesOfRegion(region);
  const offered = regionGeographies.filter((candidate) => model.offeredIn.includes(candidate.key));
  const named = regionGeographies.find((candidate) => candidate.key === prefix);
  const geography = named ?? offered[0];

  if (geography === undefined || !offered.includes(geography)) {
    const where = geography ?? narrowest;
    throw new ModelSelectionError(
      'MODEL_NOT_IN_REGION',
      `${model.displayName} is not available in ${where.displayName} (${region}).`,
      { fix: regionAdvice(model, offered[0] ?? narrowest, catalog, region) },
    );
  }
  // Before the endpoint: a fix about the endpoint would only lead to this error next.
  if (prefix !== undefined && prefix !== 'global' && named === undefined) {
    const prefixGeography = catalog.geography(prefix);
    throw new ModelSelectionError(
      'PREFIX_REGION_MISMATCH',
      `The "${prefix}." inference profile is called from ${prefixGeography?.displayName ?? prefix} regions, not from ${region} (${geography.displayName}).`,
      {
        fix: `Use "${geography.key}.${model.bedrockId}" in ${region}, or run in a ${prefixGeography?.displayName ?? prefix} region such as ${prefixGeography?.regions[0] ?? '?'}.`,
      },
    );
  }
  const endpoint = chooseEndpoint(selection, prefix, model);
  if (endpoint === 'in-region' && !model.inRegion) {
    throw new ModelSelectionError(
      'PROFILE_ONLY',
      `${model.displayName} is served through inference profiles only: its bare id "${model.bedrockId}" cannot be called on demand in ${region}.`,
      {
        fix: `Use the global endpoint (global.${model.bedrockId}) or ${geography.displayName}'s (${geography.key}.${model.bedrockId}).`,
      },
    );
  }
  return { model, endpoint, region, geography, modelId: invokeModelId(model, endpoint, geography) };
}

/**
 * The endpoint a model id's own prefix names (`global.` -> global, `us.` -> regional), or undefined for an
 * alias or a bare id: a prefixed id asks for its endpoint more precisely than a default does.
 */
export function endpointNamedBy(model: string, catalog: Catalog = catalogInUse()): EndpointKind | undefined {
  const { prefix } = splitPrefix(model.trim(), catalog);
  if (prefix === undefined) return undefined;
  return prefix === 'global' ? 'global' : 'regional';
}

/** The id to call a model by through an endpoint kind from a region of `geography`. */
export function invokeModelId(model: CatalogModel, endpoint: EndpointKind, geography: Geography): string {
  switch (endpoint) {
    case 'global':
      return `global.${model.bedrockId}`;
    case 'regional':
      return `${geography.key}.${model.bedrockId}`;
    case 'in-region':
      return model.bedrockId;
  }
}

/** The region, trimmed, and its geography; an error that names the fix when it is missing or unknown. */
export function requireRegion(
  region: string | undefined,
  catalog: Catalog,
): { region: string; geography: Geography } {
  const trimmed = region?.trim() ?? '';
  if (trimmed === '') {
    throw new ModelSelectionError('MISSING_REGION', 'No AWS region was given for the Bedrock calls.', {
      fix: 'Always name the region explicitly (for example us-west-2): a default region may not offer the model.',
    });
  }
  const geography = catalog.geographyOfRegion(trimmed);
  if (geography === undefined) {
    throw new ModelSelectionError('UNKNOWN_REGION', `Region "${trimmed}" does not serve Claude on Bedrock.`, {
      fix: `Use one of ${catalog.knownRegions.join(', ')} (if Bedrock has added the region, add it to shared/catalog/regions.json).`,
    });
  }
  return { region: trimmed, geography };
}

/** The model ids (with or without a profile prefix) of models the catalog does not list: known by id only. */
export function unlistedModelIds(modelIds: readonly string[], catalog: Catalog = catalogInUse()): string[] {
  const listed = catalog.withUnknownModels(false);
  return modelIds.filter((modelId) => {
    const { rest } = splitPrefix(modelId.trim(), listed);
    return listed.findModel(rest) === undefined && listed.findModel(`${rest}:0`) === undefined;
  });
}

/** The catalog model a name, alias or Bedrock id (with or without a profile prefix) stands for. */
export function catalogModelOf(name: string, catalog: Catalog = catalogInUse()): CatalogModel {
  return identifyModel(name.trim(), catalog).model;
}

function identifyModel(name: string, catalog: Catalog): { model: CatalogModel; prefix: string | undefined } {
  const { prefix, rest } = splitPrefix(name, catalog);
  // Bedrock ids of dated models end in ":0"; people often drop it.
  const model = catalog.findModel(rest) ?? catalog.findModel(`${rest}:0`);
  if (model === undefined) {
    const known = catalog.models.map((entry) => `${entry.key} (${entry.bedrockId})`).join(', ');
    const arnHint = name.startsWith('arn:') ? ' ARNs are not accepted here.' : '';
    const unknownHint = rest.startsWith('anthropic.')
      ? " A model the catalog does not list yet runs when unknown models are allowed (the stack's allowUnknownModels; --unknown-models allow), or add it to the catalog (--catalog, the catalog prop)."
      : '';
    throw new ModelSelectionError('UNKNOWN_MODEL', `Unknown model "${name}".${arnHint}`, {
      fix: `Use an alias, an Anthropic model name or a full Bedrock id such as global.${catalog.models[0]?.bedrockId}. Known models: ${known}.${unknownHint}`,
    });
  }
  return { model, prefix };
}

function splitPrefix(name: string, catalog: Catalog): { prefix: string | undefined; rest: string } {
  const dot = name.indexOf('.');
  const head = name.slice(0, dot).toLowerCase();
  if (dot > 0 && (head === 'global' || catalog.geography(head) !== undefined)) {
    return { prefix: head, rest: name.slice(dot + 1) };
  }
  return { prefix: undefined, rest: name };
}

function chooseEndpoint(
  selection: ModelSelection,
  prefix: string | undefined,
  model: CatalogModel,
): EndpointKind {
  const fromPrefix: EndpointKind | undefined =
    prefix === undefined ? undefined : prefix === 'global' ? 'global' : 'regional';
  if (selection.endpoint !== undefined && fromPrefix !== undefined && fromPrefix !== selection.endpoint) {
    throw new ModelSelectionError(
      'ENDPOINT_CONFLICT',
      `Model id "${selection.model}" asks for the ${fromPrefix} endpoint but this job uses the ${selection.endpoint} endpoint.`,
      {
        fix: `Drop the "${prefix}." prefix (write "${model.key}" or "${model.bedrockId}") or set the endpoint to ${fromPrefix}.`,
      },
    );
  }
  return selection.endpoint ?? fromPrefix ?? DEFAULT_ENDPOINT;
}

function regionAdvice(model: CatalogModel, geography: Geography, catalog: Catalog, region: string): string {
  if (model.offeredIn.includes(geography.key))
    return `Call it through ${geography.displayName}'s profile (${geography.key}.${model.bedrockId}) or the global one.`;
  const where = model.offeredIn
    .map((key) => catalog.geography(key))
    .filter((entry): entry is Geography => entry !== undefined)
    .map((entry) => `${entry.displayName} (e.g. ${entry.regions[0]})`)
    .join(', ');
  const regionGeographies = catalog.geographiesOfRegion(region).map((candidate) => candidate.key);
  const alternatives = catalog.models
    .filter((entry) => entry.offeredIn.some((key) => regionGeographies.includes(key)))
    .map((entry) => entry.key);
  const alternativeText =
    alternatives.length > 0 ? `, or pick a model offered in ${region}: ${alternatives.join(', ')}` : '';
  return `Call it from a region in ${where}${alternativeText}.`;
}

/**
 * A deployment that names its models allows only those (its IAM allows only those too): a record or file
 * naming another fails here, before it spends any budget, instead of with AccessDenied after.
 */
export function assertModelAllowed(
  resolved: ResolvedModel,
  allowedModelIds: readonly string[] | undefined,
): void {
  if (allowedModelIds === undefined || allowedModelIds.includes(resolved.modelId)) return;
  throw new ModelSelectionError(
    'MODEL_NOT_ALLOWED',
    `${resolved.modelId} is not one of the models this deployment allows (${allowedModelIds.join(', ')}).`,
    { fix: "Name one of those, or add the model to the stack's allowedModels and deploy again." },
  );
}
