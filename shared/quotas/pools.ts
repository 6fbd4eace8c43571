import {
  type Catalog,
  type CatalogModel,
  catalogInUse,
  type EndpointKind,
  endpointKinds,
} from '../catalog/catalog.ts';
import { ModelSelectionError } from '../errors.ts';
import { invokeModelId, requireRegion, resolveModel } from '../models/resolve-model.ts';

/**
 * One of Bedrock's quotas for a model: the model as one kind of endpoint serves it (its inference profile,
 * or the bare id in-region), called from one source region. Each has its own tokens per minute.
 */
export interface QuotaPool {
  readonly region: string;
  readonly endpoint: EndpointKind;
  readonly model: CatalogModel;
  /** The id InvokeModel takes from `region`: `global.<id>`, `<geo>.<id>` or the bare `<id>`. */
  readonly modelId: string;
}

/** Where a file's calls may go: endpoint kinds in order of preference, and source regions, the home first. */
export interface PoolChoice {
  readonly endpoints: readonly EndpointKind[];
  readonly regions: readonly string[];
}

/** The settings of a job or deployment that name its pools. */
export interface PoolSettings {
  readonly region: string;
  readonly endpoint: EndpointKind;
  readonly endpoints?: readonly EndpointKind[] | undefined;
  readonly regions?: readonly string[] | undefined;
}

/** The pool choice of settings: their lists, or their one endpoint and region. */
export function choiceOf(settings: PoolSettings): PoolChoice {
  return {
    endpoints: settings.endpoints ?? [settings.endpoint],
    regions: settings.regions ?? [settings.region],
  };
}

/** The pools settings allow for their model (a name, alias or id), in order of preference. */
export function poolsOfSettings(
  settings: PoolSettings & { readonly model: string },
  catalog: Catalog = catalogInUse(),
): readonly QuotaPool[] {
  return poolsFor(resolveModel(settings, catalog).model, choiceOf(settings), catalog).pools;
}

/** A pool the choice names that cannot be used, and why. */
export interface PoolLeftOut {
  readonly region: string;
  readonly endpoint: EndpointKind;
  readonly reason: string;
}

export interface PoolPlan {
  readonly pools: readonly QuotaPool[];
  readonly leftOut: readonly PoolLeftOut[];
}

/** How far each endpoint kind may take data: a kind may add those that reach less far, never further. */
const REACH: Readonly<Record<EndpointKind, number>> = { 'in-region': 0, regional: 1, global: 2 };

/** The kinds of `endpoints`, in order, that keep data at least as close as `cap` does. */
export function noLooserThan(endpoints: readonly EndpointKind[], cap: EndpointKind): EndpointKind[] {
  return endpoints.filter((endpoint) => REACH[endpoint] <= REACH[cap]);
}

/** The loosest of endpoint kinds: how far a file that allows them all lets its data go. */
export function loosest(endpoints: readonly EndpointKind[]): EndpointKind | undefined {
  return [...endpoints].sort((a, b) => REACH[b] - REACH[a])[0];
}

/** What a pool is called in messages, budget keys and the manifest: the region and the id called there. */
export function poolName(pool: { readonly region: string; readonly modelId: string }): string {
  return `${pool.region}#${pool.modelId}`;
}

/**
 * Reads a list of endpoint kinds or regions as users write it: separated by commas, `+`, semicolons or
 * spaces (`aws s3 cp --metadata` splits its pairs at commas, so object metadata uses `+`).
 */
export function splitList(text: string): string[] {
  return text
    .split(/[\s,;+]+/)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** Endpoint kinds from a list, checked: each known, none twice. */
export function parseEndpoints(text: string, setting: string): EndpointKind[] {
  const items = splitList(text);
  const unknown = items.filter((item) => !(endpointKinds as readonly string[]).includes(item));
  if (items.length === 0 || unknown.length > 0) {
    throw new ModelSelectionError(
      'INVALID_ENDPOINTS',
      `${setting} "${text}" is not a list of endpoint kinds${unknown.length > 0 ? ` (${unknown.join(', ')} unknown)` : ''}.`,
      {
        fix: `Use one or more of ${endpointKinds.join(', ')}, most preferred first, for example "global+regional".`,
      },
    );
  }
  return [...new Set(items as EndpointKind[])];
}

/**
 * The pools a model may be called through under `choice`, in order of preference (regions as given, in each
 * the endpoints as given), and those left out with the reason. Residency is enforced here: a choice without
 * `global` keeps every source region in the home region's geography, since a regional profile or an
 * in-region call keeps data in the geography of the region it is called from.
 */
export function poolsFor(
  model: CatalogModel,
  choice: PoolChoice,
  catalog: Catalog = catalogInUse(),
): PoolPlan {
  const [home] = choice.regions;
  if (home === undefined || choice.endpoints.length === 0) {
    throw new ModelSelectionError(
      'NO_POOLS',
      'No source region or no endpoint kind was given for the calls.',
      {
        fix: 'Name at least one region (the home region first) and one endpoint kind.',
      },
    );
  }
  const geographyOf = (region: string) =>
    catalog.geographyFor(model, region) ?? requireRegion(region, catalog).geography;
  const homeGeography = geographyOf(home);
  const global = choice.endpoints.includes('global');
  const pools: QuotaPool[] = [];
  const leftOut: PoolLeftOut[] = [];
  for (const region of new Set(choice.regions)) {
    const geography = geographyOf(region);
    if (!global && geography.key !== homeGeography.key) {
      throw new ModelSelectionError(
        'RESIDENCY_REGION',
        `${region} is in ${geography.displayName}, outside ${homeGeography.displayName} (the home region ${home}), and the file may not run globally.`,
        {
          fix: `Call only from ${homeGeography.displayName} regions (${homeGeography.regions.join(', ')}), or allow the global endpoint.`,
        },
      );
    }
    for (const endpoint of choice.endpoints) {
      if (!model.offeredIn.includes(geography.key)) {
        leftOut.push({
          region,
          endpoint,
          reason: `${model.displayName} is not offered in ${geography.displayName} (${region}).`,
        });
        continue;
      }
      if (endpoint === 'in-region' && !model.inRegion) {
        leftOut.push({
          region,
          endpoint,
          reason: `${model.displayName} is served through inference profiles only, not by its bare id in ${region}.`,
        });
        continue;
      }
      pools.push({ region, endpoint, model, modelId: invokeModelId(model, endpoint, geography) });
    }
  }
  return { pools, leftOut };
}
