import type { InputTokens } from './tokens.ts';

/** How long an entry lives after a request last used it, by the cache_control ttl that wrote it. */
const TTL_MS: Readonly<Record<string, number>> = { '5m': 5 * 60_000, '1h': 60 * 60_000 };
/** Before each breakpoint, the blocks whose prefixes are looked up for an entry another request wrote. */
const LOOKBACK_BLOCKS = 20;

/** What a request reads from the cache and writes to it, in tokens; `commit` records it once admitted. */
export interface CacheUse {
  readonly read: number;
  readonly write: number;
  commit(now: number): void;
}

/**
 * Bedrock's prompt cache for Claude, per model id. Every breakpoint whose prefix reaches the model's minimum
 * writes an entry for that prefix (its content up to and including the block, wherever the breakpoints
 * sit); a request reads the longest live entry found at a breakpoint or up to 20 blocks before one, and
 * writes what lies between it and its last such breakpoint. Entries live their TTL (5 minutes, or 1 hour
 * when asked) from their last use.
 */
export class PromptCache {
  private readonly entries = new Map<string, { expires: number; ttlMs: number }>();

  use(modelId: string, input: InputTokens, minimumTokens: number, now: number): CacheUse {
    const { prefixes, cachePoints } = input;
    const key = (index: number) => `${modelId}:${prefixes[index]?.fingerprint}`;
    const cacheable = (index: number) => (prefixes[index]?.tokens ?? 0) >= minimumTokens;
    const live = (index: number) => (this.entries.get(key(index))?.expires ?? 0) > now;
    let readIndex = -1;
    for (const point of cachePoints) {
      for (let index = point.index; index > Math.max(readIndex, point.index - LOOKBACK_BLOCKS); index -= 1) {
        if (cacheable(index) && live(index)) {
          readIndex = index;
          break;
        }
      }
    }
    const read = readIndex === -1 ? 0 : (prefixes[readIndex]?.tokens ?? 0);
    const writes = cachePoints.filter((point) => point.index > readIndex && cacheable(point.index));
    const lastWrite = writes.at(-1);
    const write = lastWrite === undefined ? 0 : (prefixes[lastWrite.index]?.tokens ?? 0) - read;
    return {
      read,
      write,
      commit: (at) => {
        const readEntry = readIndex === -1 ? undefined : this.entries.get(key(readIndex));
        if (readEntry !== undefined) readEntry.expires = at + readEntry.ttlMs;
        for (const point of writes) {
          const ttlMs = TTL_MS[point.ttl] ?? TTL_MS['5m'] ?? 0;
          this.entries.set(key(point.index), { expires: at + ttlMs, ttlMs });
        }
      },
    };
  }
}
