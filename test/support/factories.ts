import { readFileSync } from 'node:fs';
import { Catalog, modelsData, regionsData } from '../../shared/catalog/catalog.ts';
import type { StoredResult } from '../../shared/core/model.ts';
import type { MessagesBody, PromptRecord } from '../../shared/input/records.ts';

export const fixturePath = (name: string): string =>
  new URL(`../../events/${name}`, import.meta.url).pathname;

export function readFixture(name: string): Buffer {
  return readFileSync(fixturePath(name));
}

export function readJsonFixture<T = unknown>(name: string): T {
  return JSON.parse(readFixture(name).toString('utf8')) as T;
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Feeds `data` to a reader in chunks of `size` bytes, as a network stream would. */
export async function* chunked(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

export function messagesBody(overrides: Partial<MessagesBody> = {}): MessagesBody {
  return { max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }], ...overrides };
}

export function promptRecord(overrides: Partial<PromptRecord> = {}): PromptRecord {
  return {
    recordId: 'r1',
    lineNumber: 1,
    family: 'bedrock',
    idDerived: false,
    modelOverride: undefined,
    body: messagesBody(),
    ...overrides,
  };
}

/** A body whose text is `bytes` long: about bytes/3 tokens by the upper estimate, bytes/10 by the lower. */
export function bodyOfTextBytes(textBytes: number, overrides: Partial<MessagesBody> = {}): MessagesBody {
  return messagesBody({ messages: [{ role: 'user', content: 'x'.repeat(textBytes) }], ...overrides });
}

/** The shipped catalog with its data edited, for rules the shipped models do not exercise. */
export function catalogWith(edit: (models: typeof modelsData) => void): Catalog {
  const copy = structuredClone(modelsData);
  edit(copy);
  return new Catalog(copy, regionsData);
}

/** The record ids of events/prompts/mixed.jsonl's results, in input order (derived ids for lines without one). */
export const MIXED_SAMPLE_RESULT_IDS = [
  'summary-001',
  'ticket-42',
  'haiku-about-s3',
  'line-5',
  'line-6',
  'line-7',
  'line-8',
  'summary-001',
  'translate-7',
  'legacy-model',
  '12',
];

/** The key of an `s3://bucket/key` URI (an event's `output` or `manifest`). */
export function s3KeyOf(uri: unknown): string {
  const match = /^s3:\/\/[^/]+\/(.+)$/.exec(String(uri));
  if (match?.[1] === undefined) throw new Error(`not an S3 URI: ${String(uri)}`);
  return match[1];
}

/**
 * An error as the AWS SDK v3 raises one: the service's error type as `name` (omitted for a bare status), the
 * HTTP status in `$metadata`.
 */
export function awsError(
  name: string | undefined,
  httpStatusCode: number | undefined,
  message = `${name ?? 'error'} from AWS`,
): Error {
  return Object.assign(new Error(message), {
    ...(name === undefined ? {} : { name }),
    $fault: 'server',
    $metadata: { httpStatusCode },
  });
}

/** A finished record's stored result, free of cost, as a result set holds it. */
export function storedResult(
  lineNumber: number,
  outcome: StoredResult['outcome'] = { status: 'canceled' },
): StoredResult {
  return {
    subject: { recordId: `r${lineNumber}`, lineNumber, family: 'plain' },
    outcome,
    completion: {
      lineNumber,
      status: outcome.status,
      family: 'plain',
      inputTokens: 0,
      outputTokens: 0,
      cacheCreationInputTokens: 0,
      cacheReadInputTokens: 0,
      costNanoUsd: 0,
      uncachedCostNanoUsd: 0,
    },
    timing: { finishedAt: '2026-12-06T10:00:00.000Z', attempts: 1 },
  };
}

/** A catalog entry of a model that shipped after this release, as a team adds it (`--catalog`, the stack prop). */
export function newCatalogModel(
  overrides: Record<string, unknown> = {},
): Record<string, unknown> & { key: string } {
  return {
    key: 'haiku-5',
    displayName: 'Claude Haiku 5',
    bedrockId: 'anthropic.claude-haiku-5',
    aliases: ['haiku-5'],
    anthropicNames: ['claude-haiku-5'],
    offeredIn: ['us', 'eu'],
    inRegion: false,
    minCacheablePrefixTokens: 4096,
    cacheTtls: ['5m'],
    maxOutputTokens: 64000,
    longContext: { mode: 'none' },
    latency: { firstTokenMs: 500, outputTokensPerSecond: 200 },
    prices: { standard: { input: 1, output: 5, cacheWrite: 1.25, cacheWrite1h: 2, cacheRead: 0.1 } },
    ...overrides,
  };
}

/** Flex at half of Haiku 4.5's standard prices (an example: Bedrock's tier prices for Claude are not known). */
export const HAIKU_FLEX_PRICES = {
  input: 0.5,
  output: 2.5,
  cacheWrite: 0.625,
  cacheWrite1h: 1,
  cacheRead: 0.05,
};

/** A team's catalog file saying Haiku 4.5 takes flex, at `prices` (null: at prices unknown). */
export function haikuAtFlex(prices: typeof HAIKU_FLEX_PRICES | null = HAIKU_FLEX_PRICES) {
  const flex = prices === null ? {} : { prices: { standard: prices } };
  return { models: [{ key: 'haiku-4.5', serviceTiers: { flex } }] };
}
