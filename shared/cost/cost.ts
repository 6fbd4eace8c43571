import type { Catalog, CatalogModel, EndpointKind, PriceTable } from '../catalog/catalog.ts';
import { catalogInUse, pricesAt } from '../catalog/catalog.ts';
import { DEFAULT_SERVICE_TIER, type ServiceTier } from '../contract/service-tiers.ts';

/** Token counts as Bedrock's Messages response reports them in `usage`. */
export interface TokenUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cache_creation_input_tokens?: number | undefined;
  readonly cache_read_input_tokens?: number | undefined;
  /** How the cache writes split by TTL, when the response says: the rest of the writes are 5-minute ones. */
  readonly cache_creation?:
    | {
        readonly ephemeral_5m_input_tokens?: number | undefined;
        readonly ephemeral_1h_input_tokens?: number | undefined;
      }
    | undefined;
}

/** The price of one request, broken down, in nano-US-dollars (1e-9 USD): integers add up exactly. */
export interface CostBreakdown {
  readonly input: number;
  readonly output: number;
  readonly cacheWrite: number;
  readonly cacheRead: number;
  readonly total: number;
  readonly longContextRates: boolean;
}

const NANO_USD_PER_USD_PER_MILLION_TOKENS = 1_000;

/**
 * Prices one request from its usage. A request whose whole input (fresh, cache writes and cache reads)
 * exceeds the standard window is billed at the long-context rates for all of its tokens; regional and
 * in-region endpoints cost the catalog's premium over global; a service tier has prices of its own.
 * Undefined for a model (or a model's tier) the catalog knows no price of: its cost is unknown.
 */
export function costOfRequest(
  usage: TokenUsage,
  model: CatalogModel,
  endpoint: EndpointKind,
  tier: ServiceTier = DEFAULT_SERVICE_TIER,
  catalog: Catalog = catalogInUse(),
): CostBreakdown | undefined {
  const tierPrices = pricesAt(model, tier);
  const cacheWriteTokens = usage.cache_creation_input_tokens ?? 0;
  const cacheReadTokens = usage.cache_read_input_tokens ?? 0;
  const wholeInput = usage.input_tokens + cacheWriteTokens + cacheReadTokens;
  const longContextPrices = wholeInput > catalog.standardContextWindow ? tierPrices.longContext : undefined;
  const prices: PriceTable | undefined = longContextPrices ?? tierPrices.standard;
  if (prices === undefined) return undefined;
  const multiplier = catalog.endpointPriceMultiplier[endpoint];
  const price = (tokens: number, usdPerMillion: number): number =>
    tokens * Math.round(usdPerMillion * NANO_USD_PER_USD_PER_MILLION_TOKENS * multiplier);

  const input = price(usage.input_tokens, prices.input);
  const output = price(usage.output_tokens, prices.output);
  const hourWriteTokens = Math.min(cacheWriteTokens, usage.cache_creation?.ephemeral_1h_input_tokens ?? 0);
  const cacheWrite =
    price(cacheWriteTokens - hourWriteTokens, prices.cacheWrite) +
    price(hourWriteTokens, prices.cacheWrite1h);
  const cacheRead = price(cacheReadTokens, prices.cacheRead);
  return {
    input,
    output,
    cacheWrite,
    cacheRead,
    total: input + output + cacheWrite + cacheRead,
    longContextRates: longContextPrices !== undefined,
  };
}

/** The same request with no prompt cache: what it read from or wrote to the cache counted as plain input. */
export function withoutCache(usage: TokenUsage): TokenUsage {
  return {
    input_tokens:
      usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0),
    output_tokens: usage.output_tokens,
  };
}

/** Dollars with six decimals, as a number for JSON consumers. */
export function nanoUsdToUsd(nanoUsd: number): number {
  return Math.round(nanoUsd / 1_000) / 1_000_000;
}

/** The usage a Messages response reports, with the cache counts Bedrock leaves out as 0 (and its TTL split, if given). */
export function usageOfResponse(response: { readonly usage?: unknown }): TokenUsage {
  const usage = (response.usage ?? {}) as Partial<TokenUsage>;
  return {
    input_tokens: usage.input_tokens ?? 0,
    output_tokens: usage.output_tokens ?? 0,
    cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
    ...(usage.cache_creation === undefined ? {} : { cache_creation: usage.cache_creation }),
  };
}
