import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { leftOutFor } from '../../shared/quotas/pool-report.ts';
import { poolsFor } from '../../shared/quotas/pools.ts';
import type { QuotaReading } from '../../shared/quotas/service-quotas.ts';

const haiku = defaultCatalog.findModel('haiku-4.5');
const opus = defaultCatalog.findModel('opus-4.6');
if (haiku === undefined || opus === undefined) throw new Error('a model is missing from the catalog');
const choice = { endpoints: ['global' as const, 'regional' as const], regions: ['us-west-2', 'us-east-1'] };
const [haikuEast] = poolsFor(haiku, choice).pools.filter((pool) => pool.region === 'us-east-1');
const [opusEast] = poolsFor(opus, choice).pools.filter((pool) => pool.region === 'us-east-1');
if (haikuEast === undefined || opusEast === undefined) throw new Error('no us-east-1 pool');

/** The deployment's reading: both models' first us-east-1 pool have a quota of 0. */
const reading: QuotaReading = {
  quotas: [],
  leftOut: [haikuEast, opusEast].map((pool) => ({ pool, reason: `${pool.modelId} has none` })),
};
const settings = { model: 'haiku-4.5', region: 'us-west-2', endpoint: 'global' as const, ...choice };

describe("a job's pools left out, in its manifest", () => {
  it.each<[string, typeof settings, string[], string[]]>([
    ["are its default model's", settings, [], [haikuEast.modelId]],
    [
      'and those of models its lines called',
      settings,
      [`global.${opus.bedrockId}`],
      [haikuEast.modelId, opusEast.modelId],
    ],
    ['and never a model it did not call', { ...settings, model: 'opus-4.6' }, [], [opusEast.modelId]],
    [
      'and only those called once the catalog no longer knows its model',
      { ...settings, model: 'claude-retired' },
      [`global.${opus.bedrockId}`],
      [opusEast.modelId],
    ],
  ])('%s', (_case, jobSettings, called, expected) => {
    // Act
    const leftOut = leftOutFor(jobSettings, called, reading);

    // Assess
    expect(leftOut.map((pool) => pool.modelId)).toEqual(expected);
    expect(leftOut.every((pool) => pool.region === 'us-east-1' && pool.reason.endsWith('has none'))).toBe(
      true,
    );
  });
});
