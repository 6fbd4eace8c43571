import { describe, expect, it } from 'vitest';
import { defaultCatalog, type EndpointKind } from '../../shared/catalog/catalog.ts';
import { costOfRequest, nanoUsdToUsd, type TokenUsage } from '../../shared/cost/cost.ts';

const model = (key: string) => {
  const found = defaultCatalog.findModel(key);
  if (found === undefined) throw new Error(`no ${key}`);
  return found;
};

describe('costOfRequest', () => {
  describe.each<[string, string, EndpointKind, TokenUsage, number, boolean]>([
    // Opus 4.6: $5 in, $25 out per million tokens on the global endpoint
    ['Opus on global', 'opus-4.6', 'global', { input_tokens: 1_000, output_tokens: 500 }, 17_500_000, false],
    [
      'Opus on a regional profile (+10%)',
      'opus-4.6',
      'regional',
      { input_tokens: 1_000, output_tokens: 500 },
      19_250_000,
      false,
    ],
    [
      'Opus in-region (+10%)',
      'opus-4.6',
      'in-region',
      { input_tokens: 1_000, output_tokens: 500 },
      19_250_000,
      false,
    ],
    // Sonnet 4.5: cache writes at $3.75, cache reads at $0.30
    [
      'Sonnet with cache writes and reads',
      'sonnet-4.5',
      'global',
      {
        input_tokens: 100,
        cache_creation_input_tokens: 2_000,
        cache_read_input_tokens: 10_000,
        output_tokens: 300,
      },
      15_300_000,
      false,
    ],
    // Whole input (fresh + cached) over 200K: long-context rates ($6 in, $0.60 cache read, $22.50 out) for everything
    [
      'Sonnet over 200K counting cache reads',
      'sonnet-4.5',
      'global',
      { input_tokens: 150_000, cache_read_input_tokens: 60_000, output_tokens: 1_000 },
      958_500_000,
      true,
    ],
    [
      'Sonnet at exactly 200K',
      'sonnet-4',
      'global',
      { input_tokens: 200_000, output_tokens: 0 },
      600_000_000,
      false,
    ],
    [
      'Opus over 200K on a regional profile',
      'opus-4.6',
      'regional',
      { input_tokens: 300_000, output_tokens: 2_000 },
      3_382_500_000,
      true,
    ],
    [
      'Sonnet 4.5 writing 10K tokens to the 1-hour cache and 2K to the 5-minute one',
      'sonnet-4.5',
      'global',
      {
        input_tokens: 100,
        output_tokens: 0,
        cache_creation_input_tokens: 12_000,
        cache_creation: { ephemeral_5m_input_tokens: 2_000, ephemeral_1h_input_tokens: 10_000 },
      },
      // 100 x $3 + 2,000 x $3.75 + 10,000 x $6 per million.
      300_000 + 7_500_000 + 60_000_000,
      false,
    ],
    [
      'Opus reading 50K cached tokens at a tenth of the input price',
      'opus-4.6',
      'global',
      { input_tokens: 1_000, output_tokens: 0, cache_read_input_tokens: 50_000 },
      // 1,000 x $5 + 50,000 x $0.50 per million.
      5_000_000 + 25_000_000,
      false,
    ],
    [
      'Haiku, which has no long-context rates',
      'haiku-4.5',
      'global',
      { input_tokens: 1_000_000, output_tokens: 1_000_000 },
      6_000_000_000,
      false,
    ],
  ])('%s', (_case, key, endpoint, usage, expectedNanoUsd, longContextRates) => {
    it(`costs ${expectedNanoUsd} nano-USD`, () => {
      // Act
      const cost = costOfRequest(usage, model(key), endpoint);

      // Assess
      expect(cost?.total).toBe(expectedNanoUsd);
      expect(
        (cost?.input ?? 0) + (cost?.output ?? 0) + (cost?.cacheWrite ?? 0) + (cost?.cacheRead ?? 0),
      ).toBe(expectedNanoUsd);
      expect(cost?.longContextRates).toBe(longContextRates);
      expect(Number.isInteger(cost?.total)).toBe(true);
    });
  });

  it('adds up exactly over many small requests (integers, not floating dollars)', () => {
    // Act
    let total = 0;
    for (let index = 0; index < 10_000; index += 1) {
      total +=
        costOfRequest(
          { input_tokens: 7, output_tokens: 3, cache_read_input_tokens: 11 },
          model('haiku-4.5'),
          'regional',
        )?.total ?? Number.NaN;
    }

    // Assess: 7 x 1100 + 3 x 5500 + 11 x 110 = 25,410 nano-USD per request
    expect(total).toBe(254_100_000);
    expect(nanoUsdToUsd(total)).toBe(0.2541);
  });

  it('knows no cost for a model the catalog has no price for, rather than guess one', () => {
    // Act
    const cost = costOfRequest({ input_tokens: 1_000, output_tokens: 100 }, model('sonnet-4.6'), 'global');

    // Assess
    expect(cost).toBeUndefined();
  });
});

describe('nanoUsdToUsd', () => {
  it.each([
    [0, 0],
    [17_500_000, 0.0175],
    [1_499, 0.000001],
    [1_500, 0.000002],
    [958_500_000, 0.9585],
  ])('%i nano-USD is $%f', (nano, usd) => {
    expect(nanoUsdToUsd(nano)).toBe(usd);
  });
});
