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

export interface InputTokens {
  readonly total: number;
  /** The prompt prefix up to the last `cache_control` block: its size and a fingerprint of its content. */
  readonly cachePrefix: { readonly tokens: number; readonly fingerprint: string } | undefined;
}

interface Segment {
  readonly raw: unknown;
  readonly tokens: number;
  readonly cachePoint: boolean;
}

export function countInputTokens(body: MessagesBody): InputTokens {
  const segments = segmentsOf(body);
  const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
  const total =
    segments.reduce((sum, segment) => sum + segment.tokens, 0) +
    body.messages.length * TOKENS_PER_MESSAGE +
    (hasTools ? TOKENS_FOR_TOOL_USE : 0);
  const lastCachePoint = segments.findLastIndex((segment) => segment.cachePoint);
  if (lastCachePoint === -1) return { total, cachePrefix: undefined };
  const prefix = segments.slice(0, lastCachePoint + 1);
  return {
    total,
    cachePrefix: {
      tokens: prefix.reduce((sum, segment) => sum + segment.tokens, 0),
      fingerprint: createHash('sha256')
        .update(JSON.stringify(prefix.map((segment) => segment.raw)))
        .digest('hex'),
    },
  };
}

/** Tools, then system, then messages: the order Claude reads a prompt in, which is what caching keys on. */
function segmentsOf(body: MessagesBody): Segment[] {
  const segments: Segment[] = [];
  for (const tool of Array.isArray(body.tools) ? body.tools : []) {
    segments.push({
      raw: tool,
      tokens: Math.ceil(Buffer.byteLength(JSON.stringify(tool)) / BYTES_PER_TOKEN),
      cachePoint: hasCacheControl(tool),
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
  return { raw: block, tokens: tokensOf(measure), cachePoint: hasCacheControl(block) };
}

function tokensOf(measure: InputMeasure): number {
  return (
    Math.ceil(measure.textBytes / BYTES_PER_TOKEN) +
    Math.ceil(measure.binaryBytes / BINARY_BYTES_PER_TOKEN) +
    measure.images * TOKENS_PER_IMAGE
  );
}

function hasCacheControl(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'cache_control' in value;
}
