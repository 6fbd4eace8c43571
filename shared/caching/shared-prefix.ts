import { createHash } from 'node:crypto';
import type { MessagesBody } from '../input/records.ts';
import { emptyMeasure, measureContent } from '../request/token-estimate.ts';

/** Bytes per token for English-like text: a typical count, to tell whether a prefix reaches a minimum. */
const TYPICAL_BYTES_PER_TOKEN = 4;
/** The leading blocks looked at: a shared instruction or document sits in the first few. */
const MAX_LEADING_BLOCKS = 8;
/** Bedrock takes at most this many cache_control breakpoints in one request. */
export const MAX_CACHE_BREAKPOINTS = 4;

/** The prompt up to and including one leading block: a fingerprint of its content and its typical size. */
export interface LeadingPrefix {
  readonly fingerprint: string;
  readonly tokens: number;
}

/** A prefix many records of a file share, for one model. */
export interface SharedPrefix {
  readonly modelId: string;
  /** How many leading blocks it spans (tools count as one). */
  readonly blocks: number;
  readonly fingerprint: string;
  readonly tokens: number;
  /** Records of the sample that start with it. */
  readonly records: number;
}

/**
 * The blocks a prompt starts with, in the order the cache reads them (tools, the system blocks, then the
 * first message's content blocks), as cumulative prefixes; a block's own cache_control is not content. Also
 * the breakpoints the request already has, which count against Bedrock's four.
 */
export function leadingPrefixes(body: MessagesBody): {
  prefixes: LeadingPrefix[];
  userBreakpoints: number;
} {
  const first = (body.messages[0] as { content?: unknown } | undefined)?.content;
  const blocks = [
    ...(Array.isArray(body.tools) && body.tools.length > 0 ? [body.tools] : []),
    ...blocksOf(body.system),
    ...blocksOf(first),
  ];
  const hash = createHash('sha256');
  let bytes = 0;
  const prefixes = blocks.slice(0, MAX_LEADING_BLOCKS).map((block) => {
    hash.update(JSON.stringify(withoutCacheControl(block))).update('\n');
    bytes += bytesOf(block);
    return { fingerprint: hash.copy().digest('hex'), tokens: Math.ceil(bytes / TYPICAL_BYTES_PER_TOKEN) };
  });
  return { prefixes, userBreakpoints: cacheBreakpoints(body).length };
}

/** A `cache_control` breakpoint a request carries: the leading block it ends (see leadingPrefixes) and its TTL. */
export interface CacheBreakpoint {
  /** Tools count as block 0 together; blocks past the first message count on after the leading ones. */
  readonly block: number;
  /** As the block's cache_control names it: "5m" when it names none. */
  readonly ttl: string;
}

/** The breakpoints of a request, in the order Bedrock reads them (tools, system, messages). */
export function cacheBreakpoints(body: MessagesBody): CacheBreakpoint[] {
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const toolBlocks = tools.length > 0 ? 1 : 0;
  const system = blocksOf(body.system);
  const messageBlocks = body.messages.flatMap((message) =>
    blocksOf((message as { content?: unknown }).content),
  );
  return [
    ...tools.map((tool) => ({ block: 0, value: tool })),
    ...[...system, ...messageBlocks].map((value, index) => ({ block: toolBlocks + index, value })),
  ].flatMap(({ block, value }) => {
    const ttl = ttlOf(value);
    return ttl === undefined ? [] : [{ block, ttl }];
  });
}

/** A block's cache_control TTL ("5m" when it names none), or undefined when it has no breakpoint. */
function ttlOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('cache_control' in value)) return undefined;
  const breakpoint = (value as { cache_control?: unknown }).cache_control;
  const ttl =
    typeof breakpoint === 'object' && breakpoint !== null ? (breakpoint as { ttl?: unknown }).ttl : undefined;
  return ttl === undefined ? '5m' : String(ttl);
}

/**
 * The deepest leading prefix at least `minimumRecords` records of the sample share, per model, that reaches
 * the model's minimum cacheable size: where a breakpoint pays back its write (1.25x once, then 0.1x reads).
 */
export function findSharedPrefixes(
  sample: ReadonlyArray<{ readonly modelId: string; readonly body: MessagesBody }>,
  minimumTokens: (modelId: string) => number,
  minimumRecords = 2,
): SharedPrefix[] {
  const counts = new Map<string, { modelId: string; blocks: number; tokens: number; records: number }>();
  for (const { modelId, body } of sample) {
    leadingPrefixes(body).prefixes.forEach((prefix, index) => {
      const key = `${modelId}:${prefix.fingerprint}`;
      const seen = counts.get(key) ?? { modelId, blocks: index + 1, tokens: prefix.tokens, records: 0 };
      seen.records += 1;
      counts.set(key, seen);
    });
  }
  const best = new Map<string, SharedPrefix>();
  for (const [key, candidate] of counts) {
    if (candidate.records < minimumRecords || candidate.tokens < minimumTokens(candidate.modelId)) continue;
    const current = best.get(candidate.modelId);
    if (current === undefined || candidate.blocks > current.blocks)
      best.set(candidate.modelId, { ...candidate, fingerprint: key.slice(candidate.modelId.length + 1) });
  }
  return [...best.values()];
}

function blocksOf(content: unknown): unknown[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  return Array.isArray(content) ? content : [];
}

function bytesOf(block: unknown): number {
  if (Array.isArray(block)) return Buffer.byteLength(JSON.stringify(block));
  const measure = emptyMeasure();
  measureContent([block], measure);
  return measure.textBytes + measure.binaryBytes;
}

function withoutCacheControl(block: unknown): unknown {
  if (typeof block !== 'object' || block === null || Array.isArray(block) || !('cache_control' in block))
    return block;
  const { cache_control: _breakpoint, ...content } = block as Record<string, unknown>;
  return content;
}
