import { describe, expect, it } from 'vitest';
import { freshForMs, prefixTtl, withWriteTtl } from '../../shared/caching/cache-ttl.ts';

describe('the TTL of a shared prefix', () => {
  // 400,000 tokens a minute; each record spends 2,000 once the prefix is cached: 200 records a minute.
  describe.each([
    ['drains in 4 minutes', ['5m', '1h'], 800, '5m'],
    ['drains in exactly 5 minutes', ['5m', '1h'], 1_000, '5m'],
    ['drains in 10 minutes', ['5m', '1h'], 2_000, '1h'],
    ['drains in 10 minutes on a model without the hour', ['5m'], 2_000, '5m'],
  ] as const)('for a file that %s', (_case, ttls, records, expected) => {
    it(`is ${expected}`, () => {
      expect(prefixTtl({ ttls, records, tokensPerRecord: 2_000, tokensPerMinute: 400_000 })).toBe(expected);
    });
  });

  it.each([
    ['5m', 4 * 60_000],
    ['1h', 59 * 60_000],
  ] as const)('takes a %s write as cached for a minute less than its TTL', (ttl, ms) => {
    expect(freshForMs(ttl)).toBe(ms);
  });
});

describe('the cache writes of a call that asked for an hour', () => {
  it('count as 1-hour writes when Bedrock leaves the split out', () => {
    expect(
      withWriteTtl({ input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 6_000 }, '1h'),
    ).toEqual({
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 6_000,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 6_000 },
    });
  });

  it.each([
    ['Bedrock gives the split', '1h', { ephemeral_5m_input_tokens: 6_000, ephemeral_1h_input_tokens: 0 }],
    ['the call asked for 5 minutes', '5m', undefined],
  ] as const)('stay as they are when %s', (_case, ttl, split) => {
    // Prepare
    const usage = {
      input_tokens: 10,
      output_tokens: 5,
      cache_creation_input_tokens: 6_000,
      ...(split === undefined ? {} : { cache_creation: split }),
    };

    // Act
    const priced = withWriteTtl(usage, ttl);

    // Assess
    expect(priced).toBe(usage);
  });
});
