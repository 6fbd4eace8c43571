import { type Catalog, type CatalogModel, catalogInUse } from '../../shared/catalog/catalog.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { jsonOption } from '../options.ts';
import type { Terminal } from '../terminal.ts';
import { number } from '../words.ts';

export const MODELS_COMMAND = {
  name: 'models',
  summary: 'the models the catalog knows: ids, names, context windows, prices and where each is offered',
  description:
    'Lists every model of the catalog: its key and aliases, its Bedrock id, the geographies that offer it and ' +
    'whether its bare id may be called in a region or only through an inference profile, its context window ' +
    'and 1M mode (native, beta, or none, with the day a beta was retired), its smallest cacheable prefix and ' +
    'cache TTLs, its largest output, its prices per million tokens (unknown when the catalog has none: ' +
    'such a model runs, and its cost is reported as unknown), and the service tiers it is known to take ' +
    'besides default (a tier not listed is still tried when asked for, and falls back to default if refused).',
  positionals: [],
  options: { ...jsonOption },
  examples: ['bedrock-batch models', 'bedrock-batch models --json'],
} as const satisfies CommandSpec;

export function modelsCommand(args: string[], term: Terminal): number {
  const { values } = parseCommandLine(args, MODELS_COMMAND);
  const models = catalogInUse().models.map((model) => modelView(model, catalogInUse()));
  if (values.json === true) {
    term.out(`${JSON.stringify({ pricesCheckedOn: catalogInUse().pricesCheckedOn, models }, null, 2)}\n`);
    return 0;
  }
  for (const view of models) term.out(describe(view, term));
  term.out(
    `Prices in USD per million tokens on the global endpoint (regional and in-region cost ${Math.round((catalogInUse().endpointPriceMultiplier.regional - 1) * 100)}% more), checked on ${catalogInUse().pricesCheckedOn}.\n`,
  );
  return 0;
}

/** What the command shows of one model, the same as text and as JSON. */
function modelView(model: CatalogModel, catalog: Catalog) {
  const { longContext } = model;
  return {
    key: model.key,
    displayName: model.displayName,
    bedrockId: model.bedrockId,
    aliases: model.aliases,
    anthropicNames: model.anthropicNames,
    offeredIn: model.offeredIn.map((key) => catalog.geography(key)?.displayName ?? key),
    endpoints: model.inRegion ? ['global', 'regional', 'in-region'] : ['global', 'regional'],
    contextWindow: longContext.mode === 'none' ? catalog.standardContextWindow : windowOf(longContext),
    longContext: {
      mode: longContext.mode,
      ...(longContext.mode === 'beta'
        ? {
            beta: catalog.longContextBeta,
            ...(longContext.retiredOn === undefined ? {} : { retiredOn: longContext.retiredOn }),
          }
        : {}),
    },
    minCacheablePrefixTokens: model.minCacheablePrefixTokens,
    cacheTtls: model.cacheTtls,
    maxOutputTokens: model.maxOutputTokens,
    pricesUsdPerMillionTokens: model.prices.standard ?? null,
    batchInference: model.batchInference,
    /** The tiers besides default the catalog knows the model takes, each with its prices (null: unknown). */
    serviceTiers: Object.fromEntries(
      Object.entries(model.serviceTiers).map(([tier, terms]) => [tier, terms?.prices.standard ?? null]),
    ),
  };
}

type ModelView = ReturnType<typeof modelView>;

/** The 1M window, or null where the catalog does not know it. */
function windowOf(longContext: CatalogModel['longContext']): number | null {
  return 'window' in longContext ? longContext.window : null;
}

function describe(view: ModelView, term: Terminal): string {
  const { longContext, pricesUsdPerMillionTokens: prices } = view;
  const tokens = view.contextWindow === null ? 'unknown' : `${number(view.contextWindow)} tokens`;
  const mode =
    longContext.mode === 'beta'
      ? `beta ${longContext.beta}${longContext.retiredOn === undefined ? '' : `, retired on Anthropic's API on ${longContext.retiredOn}`}`
      : longContext.mode;
  const window = longContext.mode === 'none' ? tokens : `${tokens} (${mode})`;
  const price =
    prices === null
      ? term.red('unknown (the catalog has no price: costs are reported as unknown)')
      : `input $${prices.input}, output $${prices.output}, cache write $${prices.cacheWrite} (1 h $${prices.cacheWrite1h}), cache read $${prices.cacheRead}`;
  return (
    `${term.bold(view.key)} ${view.displayName}: ${view.bedrockId}\n` +
    `  names: ${[...view.aliases, ...view.anthropicNames].join(', ')}\n` +
    `  offered in ${view.offeredIn.join(', ')}; endpoints ${view.endpoints.join(', ')}${view.endpoints.includes('in-region') ? '' : ' (inference profiles only)'}\n` +
    `  context ${window}; output up to ${number(view.maxOutputTokens)} tokens\n` +
    `  caching from ${number(view.minCacheablePrefixTokens)} tokens, TTL ${view.cacheTtls.join(' or ')}\n` +
    `  prices: ${price}\n` +
    `  service tiers: ${tiersOf(view)}\n` +
    `  batch inference: ${view.batchInference ? 'yes (half price, results within hours)' : 'no: its files run on demand'}\n`
  );
}

function tiersOf(view: ModelView): string {
  const tiers = Object.entries(view.serviceTiers).map(
    ([tier, prices]) =>
      `${tier} (${prices === null ? 'price unknown' : `input $${prices.input}, output $${prices.output}`})`,
  );
  // A tier the catalog does not list is still asked for when a job wants it: Bedrock may take it by now.
  return (
    ['default', ...tiers].join(', ') +
    (tiers.length === 0 ? ' (others untried: a job asking for one falls back to default if refused)' : '')
  );
}
