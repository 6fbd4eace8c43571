import { z } from 'zod';
import type { CatalogModel, EndpointKind } from '../catalog/catalog.ts';
import namesData from '../catalog/service-quotas.json' with { type: 'json' };
import { PipelineError } from '../errors.ts';
import type { QuotaPool } from './pools.ts';

/** A quota as Service Quotas lists it: the value applied to the account in one region. */
export interface AppliedQuota {
  readonly name: string;
  readonly code: string;
  readonly value: number;
}

/** Service Quotas, as the pipeline reads it: every applied quota of Bedrock in a region. */
export interface QuotaSource {
  appliedQuotas(region: string): Promise<readonly AppliedQuota[]>;
}

const namesSchema = z.object({
  about: z.string(),
  serviceCode: z.string().min(1),
  tokensPerMinute: z.object({
    global: z.array(z.string().includes('{model}')).min(1),
    regional: z.array(z.string().includes('{model}')).min(1),
    'in-region': z.array(z.string().includes('{model}')).min(1),
  }),
  tokensPerDay: z.array(z.string().includes('{model}')).min(1),
  crossRegionDailyMultiplier: z.number().positive(),
  ignoredNameWords: z.array(z.string()),
  longContextSuffix: z.string().min(1),
});

const names = namesSchema.parse(namesData);

/** A model's daily quota applies this many times over to calls through a cross-region profile. */
export const CROSS_REGION_DAILY_MULTIPLIER = names.crossRegionDailyMultiplier;

/** The service code Bedrock's quotas are listed under. */
export const BEDROCK_SERVICE_CODE = names.serviceCode;

/** A pool's quotas as found: what matched, by name, for the minute and the day. */
export interface PoolQuotaMatch {
  readonly tokensPerMinute?: AppliedQuota | undefined;
  /** Already multiplied for cross-region calls, as Bedrock applies it to them. */
  readonly tokensPerDay?: AppliedQuota | undefined;
}

/**
 * The quotas of `pool` among a region's applied quotas: its endpoint kind's tokens-per-minute quota and the
 * model's daily quota, matched by name pattern (see service-quotas.json), never the 1M-context ones.
 */
export function matchPoolQuotas(pool: QuotaPool, quotas: readonly AppliedQuota[]): PoolQuotaMatch {
  const minute = findQuota(quotas, names.tokensPerMinute[pool.endpoint], pool.model);
  const day = findQuota(quotas, names.tokensPerDay, pool.model);
  const multiplier = pool.endpoint === 'in-region' ? 1 : CROSS_REGION_DAILY_MULTIPLIER;
  return {
    tokensPerMinute: minute,
    tokensPerDay: day === undefined ? undefined : { ...day, value: day.value * multiplier },
  };
}

/** The name Service Quotas gives a model's quota of this kind, in its first listed form (for stand-ins and docs). */
export function quotaNameFor(kind: EndpointKind | 'day', serviceQuotaModelName: string): string {
  const [template = '{model}'] = kind === 'day' ? names.tokensPerDay : names.tokensPerMinute[kind];
  return template.replace('{model}', serviceQuotaModelName);
}

function findQuota(
  quotas: readonly AppliedQuota[],
  templates: readonly string[],
  model: CatalogModel,
): AppliedQuota | undefined {
  const patterns = templates.map(
    (template) => new RegExp(`^${escapeRegExp(template).replace('\\{model\\}', '(.+)')}$`, 'i'),
  );
  const wanted = comparableName(model.displayName);
  return quotas.find((quota) =>
    patterns.some((pattern) => {
      const named = pattern.exec(quota.name.trim())?.[1];
      return named !== undefined && !isLongContext(named) && comparableName(named) === wanted;
    }),
  );
}

function isLongContext(modelName: string): boolean {
  return modelName.toLowerCase().endsWith(names.longContextSuffix.toLowerCase());
}

const ignoredNameWords = new Set(names.ignoredNameWords.map((word) => word.toLowerCase()));

/** A model's name with case, spacing, 'Anthropic' and version words set aside. */
function comparableName(name: string): string {
  return name
    .toLowerCase()
    .split(/\s+/)
    .filter((word) => word !== '' && !ignoredNameWords.has(word))
    .join(' ');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where a pool's tokens-per-minute figure came from. */
export type QuotaOrigin = 'service-quotas' | 'configured' | 'fallback';

/** A pool with the quota the pipeline will spend of it. */
export interface PoolQuota {
  readonly pool: QuotaPool;
  /** The quota applied to the account (or configured). */
  readonly tokensPerMinute: number;
  readonly tokensPerDay: number | undefined;
  /** What the pipeline spends: `tokensPerMinute` x the quota share, rounded down. */
  readonly usableTokensPerMinute: number;
  /** Of the daily quota, where it is known: `tokensPerDay` x the quota share, rounded down. */
  readonly usableTokensPerDay: number | undefined;
  readonly origin: QuotaOrigin;
  /** The Service Quotas names that matched, to show what was read. */
  readonly matched: readonly string[];
  readonly warning?: string | undefined;
}

export interface QuotaReading {
  readonly quotas: readonly PoolQuota[];
  /** Pools with no quota to spend: a quota of 0. */
  readonly leftOut: ReadonlyArray<{ readonly pool: QuotaPool; readonly reason: string }>;
}

export interface QuotaReadingSettings {
  /** A quota the user gave: it overrides Service Quotas, which is then not read. */
  readonly configured?: number | undefined;
  /** The quota a pool gets when Service Quotas cannot say. */
  readonly fallback: number;
  /** The part of each quota the pipeline spends (0 < share <= 1): other applications may need the rest. */
  readonly share: number;
}

/**
 * Each pool's tokens-per-minute and daily quota, read from Service Quotas once per region unless the user
 * configured one. A region whose quotas cannot be read, or a pool with no quota of its name, gets the
 * fallback with a warning; a pool whose quota for the minute or the day is 0 is left out.
 */
export async function readPoolQuotas(
  pools: readonly QuotaPool[],
  source: QuotaSource,
  settings: QuotaReadingSettings,
): Promise<QuotaReading> {
  if (!(settings.share > 0 && settings.share <= 1)) {
    throw new PipelineError(
      'INVALID_QUOTA_SHARE',
      `The quota share ${settings.share} is not above 0 and at most 1.`,
      {
        fix: 'Give the part of each quota to spend, for example 0.8 to leave a fifth to other applications.',
      },
    );
  }
  const regions = settings.configured === undefined ? [...new Set(pools.map((pool) => pool.region))] : [];
  const byRegion = new Map(
    regions.map((region) => [region, source.appliedQuotas(region).catch((error: unknown) => asError(error))]),
  );
  const quotas: PoolQuota[] = [];
  const leftOut: Array<{ pool: QuotaPool; reason: string }> = [];
  for (const pool of pools) {
    const quota = quotaOfPool(pool, await byRegion.get(pool.region), settings);
    if ('reason' in quota) leftOut.push(quota);
    else quotas.push(quota);
  }
  return { quotas, leftOut };
}

/** Each pool at the quota the user gave: nothing is read. */
export function configuredReading(
  pools: readonly QuotaPool[],
  settings: { readonly configured: number; readonly share: number },
): QuotaReading {
  return {
    quotas: pools.flatMap((pool) => {
      const quota = quotaOfPool(pool, undefined, { ...settings, fallback: settings.configured });
      return 'reason' in quota ? [] : [quota];
    }),
    leftOut: [],
  };
}

/** One pool's quota from its region's applied quotas (undefined when configured), or why it is left out. */
function quotaOfPool(
  pool: QuotaPool,
  applied: readonly AppliedQuota[] | Error | undefined,
  settings: QuotaReadingSettings,
): PoolQuota | { readonly pool: QuotaPool; readonly reason: string } {
  const quota = (
    tokensPerMinute: number,
    origin: QuotaOrigin,
    more: Partial<Pick<PoolQuota, 'tokensPerDay' | 'matched' | 'warning'>> = {},
  ): PoolQuota => ({
    pool,
    tokensPerMinute,
    tokensPerDay: more.tokensPerDay,
    usableTokensPerMinute: Math.floor(tokensPerMinute * settings.share),
    usableTokensPerDay:
      more.tokensPerDay === undefined ? undefined : Math.floor(more.tokensPerDay * settings.share),
    origin,
    matched: more.matched ?? [],
    warning: more.warning,
  });
  const assumed = `assumed ${settings.fallback.toLocaleString('en-US')} tokens a minute`;
  if (settings.configured !== undefined) return quota(settings.configured, 'configured');
  if (applied === undefined || applied instanceof Error) {
    const why = applied?.message ?? 'not read';
    return quota(settings.fallback, 'fallback', {
      warning: `Service Quotas could not be read in ${pool.region} (${why}); ${assumed}.`,
    });
  }
  const { tokensPerMinute: minute, tokensPerDay: day } = matchPoolQuotas(pool, applied);
  if (minute === undefined) {
    const expected = quotaNameFor(pool.endpoint, `Anthropic ${pool.model.displayName}`);
    return quota(settings.fallback, 'fallback', {
      warning: `No quota named "${expected}" (or a variant) in ${pool.region}; ${assumed}.`,
    });
  }
  const empty = [minute, day].find((quota) => quota !== undefined && quota.value <= 0);
  if (empty !== undefined) {
    return {
      pool,
      reason: `its quota "${empty.name}" is 0 in ${pool.region}; ask for an increase in Service Quotas to use it.`,
    };
  }
  return quota(minute.value, 'service-quotas', {
    tokensPerDay: day?.value,
    matched: [minute.name, ...(day === undefined ? [] : [day.name])],
  });
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
