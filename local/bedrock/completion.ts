import { createHash } from 'node:crypto';

const VOCABULARY = (
  'the batch record model token queue worker result summary data pipeline request answer document section ' +
  'value report error retry region quota window context output input cost line file job ledger budget ' +
  'throughput latency stream message event bucket object key table count total signal review finding ' +
  'analysis reliable steady careful clear brief exact honest quick large small every each first next final'
).split(' ');

export interface Completion {
  readonly id: string;
  readonly text: string;
  readonly outputTokens: number;
  readonly stopReason: 'end_turn' | 'max_tokens';
}

/**
 * A completion that depends only on the request and the seed: the same request always gets the same answer,
 * which lets tests assert output files exactly. Its natural length is 12 to 140 words (one token each);
 * a smaller max_tokens cuts it and stops with "max_tokens", as Claude does.
 */
export function deterministicCompletion(
  requestFingerprint: string,
  seed: number,
  maxTokens: number,
): Completion {
  const digest = createHash('sha256').update(`${seed}:${requestFingerprint}`).digest();
  const random = mulberry32(digest.readUInt32BE(0));
  const naturalLength = 12 + (digest.readUInt32BE(4) % 129);
  const length = Math.min(naturalLength, maxTokens);
  const words = Array.from({ length }, () => VOCABULARY[Math.floor(random() * VOCABULARY.length)] ?? 'token');
  const text = sentences(words);
  return {
    id: `msg_bdrk_${digest.subarray(8, 20).toString('hex')}`,
    text,
    outputTokens: length,
    stopReason: naturalLength > maxTokens ? 'max_tokens' : 'end_turn',
  };
}

function sentences(words: string[]): string {
  const parts: string[] = [];
  for (let start = 0; start < words.length; start += 9) {
    const sentence = words.slice(start, start + 9).join(' ');
    parts.push(`${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.`);
  }
  return parts.join(' ');
}

/** A small, fast, seedable PRNG: determinism matters here, not statistical quality. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  };
}
