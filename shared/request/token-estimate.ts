import type { MessagesBody } from '../input/records.ts';

/**
 * What a request's input is made of, measured without a tokenizer: the shared ground for our estimate below
 * and for the local Bedrock stand-in's own token counts.
 */
export interface InputMeasure {
  /** UTF-8 bytes of text: prompts, system, tool definitions and calls, text documents. */
  textBytes: number;
  /** Decoded bytes of binary documents (PDFs). */
  binaryBytes: number;
  images: number;
  messages: number;
  hasTools: boolean;
}

/**
 * Bounds on a request's input tokens.
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

export function estimateInputTokens(body: MessagesBody): TokenEstimate {
  const measure = measureInput(body);
  const upper =
    Math.ceil((measure.textBytes + measure.binaryBytes) / UPPER_BYTES_PER_TOKEN) +
    measure.messages * UPPER_TOKENS_PER_MESSAGE +
    measure.images * UPPER_TOKENS_PER_IMAGE +
    (measure.hasTools ? UPPER_TOKENS_FOR_TOOL_USE : 0);
  const lower = Math.floor(measure.textBytes / LOWER_BYTES_PER_TOKEN);
  return { lower, upper };
}

export function emptyMeasure(): InputMeasure {
  return { textBytes: 0, binaryBytes: 0, images: 0, messages: 0, hasTools: false };
}

function measureInput(body: MessagesBody): InputMeasure {
  const measure = emptyMeasure();
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    measure.hasTools = true;
    measure.textBytes += byteLength(JSON.stringify(body.tools));
  }
  measureContent(body.system, measure);
  for (const message of body.messages) {
    measure.messages += 1;
    measureContent((message as { content?: unknown }).content, measure);
  }
  return measure;
}

/** Adds a message's `content` (a string or content blocks), or a system prompt, to `measure`. */
export function measureContent(content: unknown, measure: InputMeasure): void {
  if (typeof content === 'string') {
    measure.textBytes += byteLength(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const block of content) measureBlock(block as Record<string, unknown>, measure);
}

function measureBlock(block: Record<string, unknown>, measure: InputMeasure): void {
  switch (block.type) {
    case 'text':
      measureContent(block.text, measure);
      return;
    case 'image':
      measure.images += 1;
      return;
    case 'document':
      measureDocument(block.source as Record<string, unknown> | undefined, measure);
      return;
    case 'tool_result':
      measureContent(block.content, measure);
      return;
    case 'thinking':
      measureContent(block.thinking, measure);
      return;
    default:
      // tool_use inputs, search results and block types newer than this code: their JSON is a fair ceiling.
      measure.textBytes += byteLength(JSON.stringify(block));
  }
}

function measureDocument(source: Record<string, unknown> | undefined, measure: InputMeasure): void {
  if (source?.type === 'base64' && typeof source.data === 'string') {
    // A PDF's pages become text plus page images; its decoded size is a generous ceiling and no floor.
    measure.binaryBytes += Math.floor((source.data.length * 3) / 4);
    return;
  }
  if (source?.type === 'content') {
    measureContent(source.content, measure);
    return;
  }
  measureContent(source?.data, measure);
}

function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
