import { describe, expect, it } from 'vitest';
import { renderReport } from '../../cli/report.ts';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import type { TokenUsage } from '../../shared/cost/cost.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import {
  cacheOutcomeOf,
  cachePhrase,
  cacheSummary,
  emptyTotals,
  type JobTotals,
} from '../../shared/output/manifest.ts';
import { completionOf } from '../../shared/pipeline/complete.ts';

const sonnet = resolveModel({ model: 'sonnet-4.5', endpoint: 'global', region: 'us-east-1' }, defaultCatalog);
const succeeded = { status: 'succeeded', response: { content: [] } } as const;
const priced = (usage: TokenUsage, priceMultiplier?: number) =>
  completionOf(1, 'plain', succeeded, {
    usage,
    resolved: sonnet,
    ...(priceMultiplier === undefined ? {} : { priceMultiplier }),
  });

describe("what a record's call costs, with and without the prompt cache", () => {
  // Sonnet 4.5 on the global endpoint, in nano-USD a token: input 3,000, output 15,000, 5-minute write
  // 3,750, 1-hour write 6,000, read 300.
  describe.each<[string, TokenUsage, number, number]>([
    [
      'a call that reads a 6,000-token prefix',
      { input_tokens: 50, output_tokens: 20, cache_read_input_tokens: 6_000 },
      50 * 3_000 + 20 * 15_000 + 6_000 * 300,
      6_050 * 3_000 + 20 * 15_000,
    ],
    [
      'a call that writes it for 5 minutes',
      { input_tokens: 50, output_tokens: 20, cache_creation_input_tokens: 6_000 },
      50 * 3_000 + 20 * 15_000 + 6_000 * 3_750,
      6_050 * 3_000 + 20 * 15_000,
    ],
    [
      'a call that writes it for an hour',
      {
        input_tokens: 50,
        output_tokens: 20,
        cache_creation_input_tokens: 6_000,
        cache_creation: { ephemeral_1h_input_tokens: 6_000 },
      },
      50 * 3_000 + 20 * 15_000 + 6_000 * 6_000,
      6_050 * 3_000 + 20 * 15_000,
    ],
    [
      'a call with no cache',
      { input_tokens: 50, output_tokens: 20 },
      50 * 3_000 + 20 * 15_000,
      50 * 3_000 + 20 * 15_000,
    ],
  ])('%s', (_case, usage, cost, uncached) => {
    it(`costs ${cost} nano-USD, and ${uncached} had the prefix been plain input`, () => {
      // Act
      const completion = priced(usage);

      // Assess
      expect(completion).toMatchObject({ costNanoUsd: cost, uncachedCostNanoUsd: uncached });
    });
  });

  it('prices both at the batch price in the batch lane', () => {
    // Act
    const completion = priced({ input_tokens: 50, output_tokens: 20, cache_read_input_tokens: 6_000 }, 0.5);

    // Assess
    expect(completion).toMatchObject({
      costNanoUsd: (50 * 3_000 + 20 * 15_000 + 6_000 * 300) / 2,
      uncachedCostNanoUsd: (6_050 * 3_000 + 20 * 15_000) / 2,
    });
  });
});

describe("a job's cache counters", () => {
  it.each([
    ['a hit', { cacheReadInputTokens: 6_000, cacheCreationInputTokens: 0 }, 'hit'],
    [
      'a hit that also wrote a longer prefix',
      { cacheReadInputTokens: 6_000, cacheCreationInputTokens: 40 },
      'hit',
    ],
    ['a miss', { cacheReadInputTokens: 0, cacheCreationInputTokens: 6_000 }, 'miss'],
    [
      'neither, with no cache in the call',
      { cacheReadInputTokens: 0, cacheCreationInputTokens: 0 },
      undefined,
    ],
  ] as const)('count a record as %s', (_case, completion, expected) => {
    expect(cacheOutcomeOf(completion)).toBe(expected);
  });

  it('give the hit rate among records that used the cache and the saving against no cache', () => {
    // Prepare: one write and 999 reads.
    const totals: JobTotals = {
      ...emptyTotals,
      cacheHitRecordCount: 999,
      cacheMissRecordCount: 1,
      cacheCreationInputTokenCount: 6_000,
      cacheReadInputTokenCount: 5_994_000,
      costNanoUsd: 2_500_000_000,
      uncachedCostNanoUsd: 18_000_000_000,
    };

    // Act
    const summary = cacheSummary(totals);

    // Assess
    expect(summary).toEqual({
      hitRate: 0.999,
      hitRecords: 999,
      missRecords: 1,
      writeTokens: 6_000,
      readTokens: 5_994_000,
      uncachedCostUsd: 18,
      savingUsd: 15.5,
    });
    expect(cachePhrase(totals)).toBe('cache 99.9% hits, saved $15.5000');
    expect(renderReport({ ...reportBasics, cache: summary })).toContain(
      '<p data-metric="cache">hit rate 99.9% (999 of 1,000 records read it) · 5,994,000 tokens read · 6,000 written · saved $15.5 of $18 the same calls cost without it</p>',
    );
  });

  it('show nothing for a job that never used the cache', () => {
    // Act
    const summary = cacheSummary(emptyTotals);

    // Assess
    expect(summary.hitRate).toBeNull();
    expect(cachePhrase(emptyTotals)).toBeUndefined();
    expect(renderReport({ ...reportBasics, cache: summary })).not.toContain('Prompt cache');
  });
});

const reportBasics = {
  totalRecordCount: 1_000,
  successRecordCount: 1_000,
  errorRecordCount: 0,
  inputTokenCount: 50_000,
  outputTokenCount: 20_000,
  estimatedCostUsd: 2.5,
};
