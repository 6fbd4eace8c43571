import type { MessagesBody } from '../input/records.ts';

/**
 * Bounds on a request's input tokens, computed without a tokenizer.
 *
 * Claude's tokenizers average about 3.5-4 bytes of English per token, fewer for code, JSON and most
 * non-Latin scripts. `upper` counts one token per 3 UTF-8 bytes of text plus fixed costs per message, image
 * and tool list, so it errs high: it decides when to ask for the 1M window (asking when not needed costs
 * nothing) and what to reserve from the token budget (settled with real usage afterwards). `lower` counts
 * one token per 10 bytes and nothing for images or documents' binary data, so it errs low: we refuse a
 * record before calling only when even `lower` is over a hard limit, and leave the grey zone between the
 * two to Bedrock (or to CountTokens, where a caller wants certainty near a boundary).
 */
export interface TokenEstimate {
  readonly lower: number;
  readonly upper: number;
}

const UPPER_BYTES_PER_TOKEN = 3;
const LOWER_BYTES_PER_TOKEN = 10;
/** Role markers and turn separators. */
const UPPER_TOKENS_PER_MESSAGE = 8;
/** An image is resized to at most ~1.15 megapixels, about 1,600 tokens. */
const UPPER_TOKENS_PER_IMAGE = 1_600;
/** The system prompt Claude adds when tools are defined. */
const UPPER_TOKENS_FOR_TOOL_USE = 500;

interface Tally {
  textBytes: number;
  binaryBytes: number;
  images: number;
}

export function estimateInputTokens(body: MessagesBody): TokenEstimate {
  const tally: Tally = { textBytes: 0, binaryBytes: 0, images: 0 };
  countContent(body.system, tally);
  for (const message of body.messages) {
    countContent((message as { content?: unknown }).content, tally);
  }
  const hasTools = Array.isArray(body.tools) && body.tools.length > 0;
  if (hasTools) tally.textBytes += byteLength(JSON.stringify(body.tools));

  const upper =
    Math.ceil((tally.textBytes + tally.binaryBytes) / UPPER_BYTES_PER_TOKEN) +
    body.messages.length * UPPER_TOKENS_PER_MESSAGE +
    tally.images * UPPER_TOKENS_PER_IMAGE +
    (hasTools ? UPPER_TOKENS_FOR_TOOL_USE : 0);
  const lower = Math.floor(tally.textBytes / LOWER_BYTES_PER_TOKEN);
  return { lower, upper };
}

function countContent(content: unknown, tally: Tally): void {
  if (typeof content === 'string') {
    tally.textBytes += byteLength(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const block of content) countBlock(block as Record<string, unknown>, tally);
}

function countBlock(block: Record<string, unknown>, tally: Tally): void {
  switch (block.type) {
    case 'text':
      countContent(block.text, tally);
      return;
    case 'image':
      tally.images += 1;
      return;
    case 'document':
      countDocument(block.source as Record<string, unknown> | undefined, tally);
      return;
    case 'tool_result':
      countContent(block.content, tally);
      return;
    case 'thinking':
      countContent(block.thinking, tally);
      return;
    default:
      // tool_use inputs, search results and block types newer than this code: their JSON is a fair ceiling.
      tally.textBytes += byteLength(JSON.stringify(block));
  }
}

function countDocument(source: Record<string, unknown> | undefined, tally: Tally): void {
  if (source?.type === 'base64' && typeof source.data === 'string') {
    // A PDF's pages become text plus page images; its decoded size is a generous ceiling and no floor.
    tally.binaryBytes += Math.floor((source.data.length * 3) / 4);
    return;
  }
  if (source?.type === 'content') {
    countContent(source.content, tally);
    return;
  }
  countContent(source?.data, tally);
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
