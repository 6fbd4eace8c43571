import { createHash } from 'node:crypto';
import type { MessagesBody } from '../../shared/input/records.ts';
import { emptyMeasure, type InputMeasure, measureContent } from '../../shared/request/token-estimate.ts';

/**
 * The stand-in's tokenizer: one token per 4 UTF-8 bytes of text, per 6 bytes of binary documents, 1,100 per
 * image, 3 per message and 300 when tools are defined. Real counts differ; what matters is that they are
 * stable, inside the pipeline's estimate range, and the same for Invoke and CountTokens.
 */
const BYTES_PER_TOKEN = 4;
const BINARY_BYTES_PER_TOKEN = 6;
const TOKENS_PER_IMAGE = 1_100;
const TOKENS_PER_MESSAGE = 3;
const TOKENS_FOR_TOOL_USE = 300;

/** The prompt up to and including one block: its size, and a fingerprint of its content (cache_control aside). */
export interface PromptPrefix {
  readonly tokens: number;
  readonly fingerprint: string;
}

/** A `cache_control` breakpoint: which block (an index into the prefixes) and the TTL it asks for. */
export interface CachePoint {
  readonly index: number;
  /** As the block's cache_control says: "5m" when it names none. */
  readonly ttl: string;
}

export interface InputTokens {
  readonly total: number;
  /** The prefix after each block, in prompt order (tools, system, messages). */
  readonly prefixes: readonly PromptPrefix[];
  readonly cachePoints: readonly CachePoint[];
}

interface Segment {
  readonly raw: unknown;
  readonly tokens: number;
  /** The block's cache_control ttl ("5m" unless it names one), or undefined when it has none. */
  readonly cacheTtl: string | undefined;
}

export function countInputTokens(body: MessagesBody): InputTokens {
  const segments = segmentsOf(body);
  const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
  const total =
    segments.reduce((sum, segment) => sum + segment.tokens, 0) +
    body.messages.length * TOKENS_PER_MESSAGE +
    (hasTools ? TOKENS_FOR_TOOL_USE : 0);
  const prefixes: PromptPrefix[] = [];
  const cachePoints: CachePoint[] = [];
  let tokens = 0;
  const hash = createHash('sha256');
  for (const [index, segment] of segments.entries()) {
    tokens += segment.tokens;
    hash.update(JSON.stringify(withoutCacheControl(segment.raw))).update('\n');
    prefixes.push({ tokens, fingerprint: hash.copy().digest('hex') });
    if (segment.cacheTtl !== undefined) cachePoints.push({ index, ttl: segment.cacheTtl });
  }
  return { total, prefixes, cachePoints };
}

/** Tools, then system, then messages: the order Claude reads a prompt in, which is what caching keys on. */
function segmentsOf(body: MessagesBody): Segment[] {
  const segments: Segment[] = [];
  for (const tool of Array.isArray(body.tools) ? body.tools : []) {
    segments.push({
      raw: tool,
      tokens: Math.ceil(Buffer.byteLength(JSON.stringify(tool)) / BYTES_PER_TOKEN),
      cacheTtl: cacheTtlOf(tool),
    });
  }
  for (const block of blocksOf(body.system)) segments.push(segmentOf(block));
  for (const message of body.messages) {
    for (const block of blocksOf((message as { content?: unknown }).content)) segments.push(segmentOf(block));
  }
  return segments;
}

function blocksOf(content: unknown): unknown[] {
  if (typeof content === 'string') return content === '' ? [] : [content];
  return Array.isArray(content) ? content : [];
}

function segmentOf(block: unknown): Segment {
  const measure = emptyMeasure();
  measureContent(typeof block === 'string' ? block : [block], measure);
  return { raw: block, tokens: tokensOf(measure), cacheTtl: cacheTtlOf(block) };
}

function tokensOf(measure: InputMeasure): number {
  return (
    Math.ceil(measure.textBytes / BYTES_PER_TOKEN) +
    Math.ceil(measure.binaryBytes / BINARY_BYTES_PER_TOKEN) +
    measure.images * TOKENS_PER_IMAGE
  );
}

/** A block as the cache keys it: where a breakpoint sits does not change the content before it. */
function withoutCacheControl(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !('cache_control' in value)) return value;
  const { cache_control: _breakpoint, ...content } = value as Record<string, unknown>;
  return content;
}

function cacheTtlOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('cache_control' in value)) return undefined;
  const { ttl } = ((value as { cache_control?: unknown }).cache_control ?? {}) as { ttl?: unknown };
  return typeof ttl === 'string' ? ttl : '5m';
}
