import { z } from 'zod';
import type { ServiceTier } from '../contract/service-tiers.ts';
import { PipelineError } from '../errors.ts';
import modelsData from './models.json' with { type: 'json' };
import regionsData from './regions.json' with { type: 'json' };

export const endpointKinds = ['global', 'regional', 'in-region'] as const;
/** global: `global.` profile, no premium; regional: geography profile (`us.` ...); in-region: bare id, this region only. */
export type EndpointKind = (typeof endpointKinds)[number];

const geographyKey = z.string().regex(/^[a-z]+$/);
const usdPerMillionTokens = z.number().nonnegative();
const priceTable = z.object({
  input: usdPerMillionTokens,
  output: usdPerMillionTokens,
  /** Cache writes with the default 5-minute TTL. */
  cacheWrite: usdPerMillionTokens,
  /** Cache writes with the 1-hour TTL. */
  cacheWrite1h: usdPerMillionTokens,
  cacheRead: usdPerMillionTokens,
});

const longContextSchema = z.discriminatedUnion('mode', [
  z.object({
    mode: z.literal('beta'),
    window: z.number().int().positive(),
    /** The day Anthropic retired the beta on its own API; whether Bedrock still takes it is unverified. */
    retiredOn: z.iso.date().optional(),
  }),
  z.object({ mode: z.literal('native'), window: z.number().int().positive() }),
  z.object({ mode: z.literal('none') }),
  /** Not known (a model the catalog does not list): nothing is refused or added here; Bedrock decides. */
  z.object({ mode: z.literal('unknown') }),
]);

const pricesSchema = z.object({ standard: priceTable.optional(), longContext: priceTable.optional() });

/**
 * A tier other than default that the model takes on demand, and its prices when known (a tier with none
 * leaves its records' cost unknown, and says so).
 */
const tierTermsSchema = z.object({ prices: pricesSchema.default({}) });

export const modelSchema = z.object({
  key: z.string().min(1),
  displayName: z.string().min(1),
  bedrockId: z.string().regex(/^anthropic\./),
  aliases: z.array(z.string().min(1)),
  anthropicNames: z.array(z.string().min(1)),
  offeredIn: z.array(geographyKey).min(1),
  /**
   * Its bare id may be called on demand in a region (the in-region endpoint). False for models Bedrock
   * serves through inference profiles only: their bare id answers "on-demand throughput isn't supported".
   */
  inRegion: z.boolean().default(true),
  minCacheablePrefixTokens: z.number().int().positive(),
  /** The cache_control ttl values the model takes; 5m is the default when a breakpoint names none. */
  cacheTtls: z.array(z.enum(['5m', '1h'])).min(1),
  maxOutputTokens: z.number().int().positive(),
  longContext: longContextSchema,
  /** How long Bedrock takes to answer on demand: to the first token, then per output token. */
  latency: z.object({
    firstTokenMs: z.number().nonnegative(),
    outputTokensPerSecond: z.number().positive(),
  }),
  /**
   * USD per million tokens; a model whose price the catalog does not know has none (its cost is then
   * unknown, and said to be, never guessed).
   */
  prices: pricesSchema,
  /**
   * The service tiers besides default the model is known to take. A tier not listed is still tried (support
   * changes faster than this file): Bedrock's refusal sends the job's records of this model to default.
   */
  serviceTiers: z
    .object({ priority: tierTermsSchema.optional(), flex: tierTermsSchema.optional() })
    .strict()
    .default({}),
  /** Overrides the batch minimum record count for this model. */
  batchMinimumRecords: z.number().int().positive().optional(),
  /**
   * Bedrock batch inference (CreateModelInvocationJob) takes the model. False: its files run on demand
   * whatever their lane says (a batch job for it would only fail).
   */
  batchInference: z.boolean().default(true),
});

const batchSchema = z.object({
  about: z.string().optional(),
  /** Batch inference's price as a share of on-demand. */
  priceMultiplier: z.number().positive().max(1),
  minimumRecordsPerJob: z.number().int().positive(),
  maximumRecordsPerJob: z.number().int().positive(),
  maximumFileBytes: z.number().int().positive(),
  maximumJobBytes: z.number().int().positive(),
  /** Jobs submitted or in progress at once, per region. */
  jobsInFlightPerRegion: z.number().int().positive(),
  /** The timeoutDurationInHours a job may be given: past it, a job ends Expired. */
  timeoutHours: z.object({ minimum: z.number().int().positive(), maximum: z.number().int().positive() }),
  /** Under the auto lane, a deadline shorter than this runs on demand: batch promises no turnaround. */
  autoMinimumDeadlineHours: z.number().positive(),
});

const modelCatalogSchema = z
  .object({
    pricesCheckedOn: z.iso.date(),
    anthropicVersion: z.string().min(1),
    acceptedAnthropicVersions: z.array(z.string().min(1)).min(1),
    requestBodyLimitBytes: z.number().int().positive(),
    standardContextWindow: z.number().int().positive(),
    longContextBeta: z.string().min(1),
    allowedBetas: z.array(z.string().min(1)),
    bodyFieldsBedrockRejects: z.array(z.string().min(1)),
    endpointPriceMultiplier: z.object({ global: z.number(), regional: z.number(), 'in-region': z.number() }),
    /** How fast each tier produces output, as a multiple of default's: for the stand-in and deadlines. */
    serviceTierOutputSpeed: z.object({
      default: z.number().positive(),
      priority: z.number().positive(),
      flex: z.number().positive(),
    }) satisfies z.ZodType<Record<ServiceTier, number>>,
    batch: batchSchema,
    models: z.array(modelSchema).min(1),
  })
  .superRefine((catalog, ctx) => {
    if (!catalog.acceptedAnthropicVersions.includes(catalog.anthropicVersion)) {
      ctx.addIssue({ code: 'custom', message: 'acceptedAnthropicVersions must include anthropicVersion' });
    }
    const seen = new Map<string, string>();
    for (const model of catalog.models) {
      for (const name of [model.key, model.bedrockId, ...model.aliases, ...model.anthropicNames]) {
        const owner = seen.get(name.toLowerCase());
        if (owner !== undefined && owner !== model.key) {
          ctx.addIssue({
            code: 'custom',
            message: `name "${name}" is claimed by both ${owner} and ${model.key}`,
          });
        }
        seen.set(name.toLowerCase(), model.key);
      }
      const priced = model.prices.standard !== undefined;
      const oneMillion = model.longContext.mode === 'beta' || model.longContext.mode === 'native';
      if (priced && oneMillion && model.prices.longContext === undefined) {
        ctx.addIssue({ code: 'custom', message: `${model.key} has a 1M mode but no longContext prices` });
      }
    }
  });

const regionCatalogSchema = z.object({
  geographies: z.record(
    geographyKey,
    z.object({ displayName: z.string().min(1), regions: z.array(z.string().min(1)).min(1) }),
  ),
});

export type ModelCatalogData = z.infer<typeof modelCatalogSchema>;
export type RegionCatalogData = z.infer<typeof regionCatalogSchema>;
export type CatalogModel = z.infer<typeof modelSchema>;
export type PriceTable = z.infer<typeof priceTable>;
export type ModelPrices = z.infer<typeof pricesSchema>;
export type ModelLatency = CatalogModel['latency'];

/** The catalog says the model takes the tier on demand (every model takes default). */
export function takesTier(model: CatalogModel, tier: ServiceTier): boolean {
  return tier === 'default' || model.serviceTiers[tier] !== undefined;
}

/** A model's prices at a service tier: its own at default; a tier's own prices, else none (unknown). */
export function pricesAt(model: CatalogModel, tier: ServiceTier): ModelPrices {
  if (tier === 'default') return model.prices;
  return model.serviceTiers[tier]?.prices ?? {};
}

/** Seconds a model takes to answer with `outputTokens` tokens, by the catalog's latency figures. */
export function answerSeconds(latency: ModelLatency, outputTokens: number): number {
  return latency.firstTokenMs / 1000 + outputTokens / latency.outputTokensPerSecond;
}
export type BatchLimits = Omit<z.infer<typeof batchSchema>, 'about'>;

/**
 * A Bedrock model id of Anthropic's form: `anthropic.` then lower-case letters, digits, dots, dashes and the
 * version's colon (`anthropic.claude-opus-5`, `anthropic.claude-haiku-5-20270101-v1:0`).
 */
const BEDROCK_MODEL_ID = /^anthropic\.[a-z0-9][a-z0-9.:-]*$/;

export interface CatalogOptions {
  /**
   * A model id of Bedrock's form that the catalog does not list is a model of its own, known by its id only
   * (see `unknownModel`), instead of an unknown name.
   */
  readonly allowUnknownModels?: boolean;
}

export interface Geography {
  readonly key: string;
  readonly displayName: string;
  readonly regions: readonly string[];
}

/** The model and region data, validated once and indexed for the lookups every other rule makes. */
export class Catalog {
  readonly models: readonly CatalogModel[];
  readonly anthropicVersion: string;
  readonly acceptedAnthropicVersions: ReadonlySet<string>;
  readonly requestBodyLimitBytes: number;
  readonly standardContextWindow: number;
  readonly longContextBeta: string;
  readonly allowedBetas: ReadonlySet<string>;
  readonly bodyFieldsBedrockRejects: readonly string[];
  readonly endpointPriceMultiplier: Readonly<Record<EndpointKind, number>>;
  readonly serviceTierOutputSpeed: Readonly<Record<ServiceTier, number>>;
  readonly pricesCheckedOn: string;
  readonly batch: BatchLimits;
  readonly allowsUnknownModels: boolean;
  private readonly modelsByName: ReadonlyMap<string, CatalogModel>;
  private readonly geographiesByRegion: ReadonlyMap<string, readonly Geography[]>;
  private readonly geographiesByKey: ReadonlyMap<string, Geography>;

  constructor(
    private readonly modelData: unknown,
    private readonly regionData: unknown,
    options: CatalogOptions = {},
  ) {
    this.allowsUnknownModels = options.allowUnknownModels === true;
    const models = parseOrThrow(modelCatalogSchema, modelData, 'model catalog');
    const regions = parseOrThrow(regionCatalogSchema, regionData, 'region catalog');
    this.models = models.models;
    this.anthropicVersion = models.anthropicVersion;
    this.acceptedAnthropicVersions = new Set(models.acceptedAnthropicVersions);
    this.requestBodyLimitBytes = models.requestBodyLimitBytes;
    this.standardContextWindow = models.standardContextWindow;
    this.longContextBeta = models.longContextBeta;
    this.allowedBetas = new Set(models.allowedBetas);
    this.bodyFieldsBedrockRejects = models.bodyFieldsBedrockRejects;
    this.endpointPriceMultiplier = models.endpointPriceMultiplier;
    this.serviceTierOutputSpeed = models.serviceTierOutputSpeed;
    this.pricesCheckedOn = models.pricesCheckedOn;
    const { about: _about, ...batch } = models.batch;
    this.batch = batch;
    this.modelsByName = new Map(
      models.models.flatMap((model) =>
        [model.key, model.bedrockId, ...model.aliases, ...model.anthropicNames].map(
          (name) => [name.toLowerCase(), model] as const,
        ),
      ),
    );
    const geographies = Object.entries(regions.geographies).map(
      ([key, geography]): Geography => ({ key, ...geography }),
    );
    this.geographiesByKey = new Map(geographies.map((geography) => [geography.key, geography]));
    // A region may be in more than one geography (Sydney: AU and APAC): the narrowest first, as it keeps data
    // closest.
    const narrowestFirst = [...geographies].sort((a, b) => a.regions.length - b.regions.length);
    const byRegion = new Map<string, Geography[]>();
    for (const geography of narrowestFirst)
      for (const region of geography.regions)
        byRegion.set(region, [...(byRegion.get(region) ?? []), geography]);
    this.geographiesByRegion = byRegion;
  }

  /**
   * Finds a model by key, alias, Anthropic API name or bare Bedrock id (case-insensitive); when the catalog
   * allows unknown models, a bare id of Bedrock's form it does not list is a model known by its id only.
   */
  findModel(name: string): CatalogModel | undefined {
    const known = this.modelsByName.get(name.toLowerCase());
    if (known !== undefined || !this.allowsUnknownModels || !BEDROCK_MODEL_ID.test(name)) return known;
    return this.unknownModel(name);
  }

  /** The model is one the catalog lists (not one known by its id only). */
  lists(model: CatalogModel): boolean {
    return this.modelsByName.get(model.bedrockId.toLowerCase()) !== undefined;
  }

  /** The same data, allowing unknown model ids or not. */
  withUnknownModels(allow: boolean): Catalog {
    if (allow === this.allowsUnknownModels) return this;
    return new Catalog(this.modelData, this.regionData, { allowUnknownModels: allow });
  }

  /** The fewest records a batch job for this model may hold. */
  batchMinimumRecords(model: CatalogModel): number {
    return model.batchMinimumRecords ?? this.batch.minimumRecordsPerJob;
  }

  /**
   * A model the catalog does not list, known by its Bedrock id only: offered wherever Claude is (Bedrock says
   * otherwise if not), its prices and 1M mode unknown (its cost is reported unknown, and long documents are
   * sent as they are, for Bedrock to take or refuse), its output limit Bedrock's to enforce, its caching and
   * latency those of the catalog's most demanding model.
   */
  private unknownModel(bedrockId: string): CatalogModel {
    return {
      key: bedrockId,
      displayName: bedrockId,
      bedrockId,
      aliases: [],
      anthropicNames: [],
      offeredIn: this.geographyKeys.slice(),
      inRegion: true,
      minCacheablePrefixTokens: Math.max(...this.models.map((model) => model.minCacheablePrefixTokens)),
      cacheTtls: ['5m'],
      maxOutputTokens: Number.MAX_SAFE_INTEGER,
      longContext: { mode: 'unknown' },
      latency: {
        firstTokenMs: Math.max(...this.models.map((model) => model.latency.firstTokenMs)),
        outputTokensPerSecond: Math.min(...this.models.map((model) => model.latency.outputTokensPerSecond)),
      },
      prices: {},
      serviceTiers: {},
      // Not known to take batch inference: its files run on demand.
      batchInference: false,
    };
  }

  /** The region's narrowest geography. */
  geographyOfRegion(region: string): Geography | undefined {
    return this.geographiesByRegion.get(region)?.[0];
  }

  /** Every geography the region is in, the narrowest first; none for a region the catalog does not know. */
  geographiesOfRegion(region: string): readonly Geography[] {
    return this.geographiesByRegion.get(region) ?? [];
  }

  /**
   * The geography whose profile a call to `model` from `region` goes through: the narrowest of the region's
   * that offers the model, or the narrowest when none does.
   */
  geographyFor(model: CatalogModel, region: string): Geography | undefined {
    const geographies = this.geographiesOfRegion(region);
    return geographies.find((geography) => model.offeredIn.includes(geography.key)) ?? geographies[0];
  }

  geography(key: string): Geography | undefined {
    return this.geographiesByKey.get(key);
  }

  get geographyKeys(): readonly string[] {
    return [...this.geographiesByKey.keys()];
  }

  get knownRegions(): readonly string[] {
    return [...this.geographiesByRegion.keys()];
  }
}

function parseOrThrow<T>(schema: z.ZodType<T>, data: unknown, what: string): T {
  const result = schema.safeParse(data);
  if (!result.success) {
    throw new PipelineError(
      'INVALID_CATALOG',
      `The ${what} data is invalid: ${z.prettifyError(result.error)}`,
    );
  }
  return result.data;
}

/** The catalog shipped in this folder; tests build others from edited copies of the same data. */
export const defaultCatalog = new Catalog(modelsData, regionsData);

let inUse: Catalog = defaultCatalog;

/**
 * The catalog this process runs with: the built-in one, or the built-in one with the user's models merged
 * in (see user-catalog.ts), set once when the process starts.
 */
export function catalogInUse(): Catalog {
  return inUse;
}

/** Sets the catalog of the process, once, at its start: the command line's main, a function's cold start. */
export function useCatalog(catalog: Catalog): void {
  inUse = catalog;
}

/** The model for files that name none, unless a deployment chooses another. */
export const DEFAULT_MODEL = 'opus-4.6';
export { modelsData, regionsData };
