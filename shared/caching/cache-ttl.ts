import type { TokenUsage } from '../cost/cost.ts';

/** The cache_control ttl values Bedrock takes: an entry lives this long after the last request that used it. */
export type CacheTtl = '5m' | '1h';

const TTL_MINUTES: Readonly<Record<CacheTtl, number>> = { '5m': 5, '1h': 60 };

/** A written prefix is taken as cached for its TTL less this margin: the clocks of workers and Bedrock differ. */
const FRESH_MARGIN_MINUTES = 1;

/**
 * The TTL of a file's shared prefix. Every read renews an entry, so a file that drains steadily keeps even a
 * 5-minute entry alive; but a file that takes longer than that to drain will meet pauses (budget waits, a
 * spent daily quota, a retry wave) in which a 5-minute entry would lapse and be written again at 1.25x. The
 * 1-hour write costs 2x once instead, so it is chosen, where the model has it, for files whose estimated
 * drain at the quota is longer than the short TTL.
 */
export function prefixTtl(file: {
  readonly ttls: readonly CacheTtl[];
  readonly records: number;
  /** What one record is expected to spend of the quota once the prefix is cached. */
  readonly tokensPerRecord: number;
  readonly tokensPerMinute: number;
}): CacheTtl {
  const drainMinutes = (file.records * file.tokensPerRecord) / file.tokensPerMinute;
  return file.ttls.includes('1h') && drainMinutes > TTL_MINUTES['5m'] ? '1h' : '5m';
}

/** How long after a write the prefix is taken as still in the cache (reads renew it on Bedrock's side). */
export function freshForMs(ttl: CacheTtl): number {
  return (TTL_MINUTES[ttl] - FRESH_MARGIN_MINUTES) * 60_000;
}

/**
 * The usage with its cache writes split by TTL. Bedrock may leave the split out; a call whose only breakpoint
 * is the pipeline's own wrote what it wrote at that breakpoint's TTL, which prices it right.
 */
export function withWriteTtl(usage: TokenUsage, ttl: CacheTtl | undefined): TokenUsage {
  if (ttl !== '1h' || usage.cache_creation !== undefined) return usage;
  const written = usage.cache_creation_input_tokens ?? 0;
  return { ...usage, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: written } };
}
