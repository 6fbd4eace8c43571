import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { ServiceQuotaRates } from '../../shared/quotas/pool-rates.ts';
import { poolsFor } from '../../shared/quotas/pools.ts';
import type { AppliedQuota, QuotaSource } from '../../shared/quotas/service-quotas.ts';

const haiku = defaultCatalog.findModel('haiku-4.5');
if (haiku === undefined) throw new Error('no haiku-4.5 in the catalog');
const pools = poolsFor(haiku, { endpoints: ['global', 'regional'], regions: ['us-west-2'] }).pools;
const GLOBAL = 'Global cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5';
const REGIONAL = 'Cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5';
const DAY =
  'Model invocation max tokens per day for Anthropic Claude Haiku 4.5 (doubled for cross-region calls)';
const GLOBAL_POOL = `us-west-2#global.${haiku.bedrockId}`;
const REGIONAL_POOL = `us-west-2#us.${haiku.bedrockId}`;

/** Service Quotas as a script: each reading answers the next value, or fails. */
function scripted(readings: Array<Record<string, number> | 'fail'>) {
  let reads = 0;
  const source: QuotaSource = {
    appliedQuotas: async (): Promise<readonly AppliedQuota[]> => {
      const reading = readings[Math.min(reads, readings.length - 1)];
      reads += 1;
      if (reading === 'fail' || reading === undefined) throw new Error('unavailable');
      return Object.entries(reading).map(([name, value]) => ({ name, code: 'L-00000000', value }));
    },
  };
  return { source, reads: () => reads };
}

describe('the budget rates read from Service Quotas', () => {
  it("spends the share of each pool's applied quota, read before the first use", async () => {
    // Prepare
    const { source } = scripted([{ [GLOBAL]: 500_000, [REGIONAL]: 200_000 }]);
    const rates = new ServiceQuotaRates(pools, source, { fallback: 400_000, share: 0.5, refreshMs: 300_000 });

    // Act
    await rates.ready();

    // Assess
    expect(rates.rates()).toEqual({
      tokensPerMinute: 200_000,
      perKey: {
        [GLOBAL_POOL]: { tokensPerMinute: 250_000, tokensPerDay: undefined },
        [REGIONAL_POOL]: { tokensPerMinute: 100_000, tokensPerDay: undefined },
      },
      leftOut: {},
    });
  });

  it("spends the share of each pool's daily quota, doubled for cross-region calls as Bedrock applies it", async () => {
    // Prepare
    const { source } = scripted([{ [GLOBAL]: 500_000, [REGIONAL]: 200_000, [DAY]: 3_000_000 }]);
    const rates = new ServiceQuotaRates(pools, source, { fallback: 400_000, share: 0.5, refreshMs: 300_000 });

    // Act
    await rates.ready();

    // Assess
    expect(rates.rates().perKey?.[GLOBAL_POOL]).toEqual({
      tokensPerMinute: 250_000,
      tokensPerDay: 3_000_000,
    });
  });

  it('leaves out a pool whose quota is 0, with the reason, and reports the reading it spends by', async () => {
    // Prepare
    const { source } = scripted([{ [GLOBAL]: 500_000, [REGIONAL]: 0 }]);
    const rates = new ServiceQuotaRates(pools, source, { fallback: 400_000, share: 1, refreshMs: 300_000 });

    // Act
    const reading = await rates.reading();

    // Assess
    expect(Object.keys(rates.rates().leftOut ?? {})).toEqual([REGIONAL_POOL]);
    expect(rates.rates().leftOut?.[REGIONAL_POOL]).toContain(`"${REGIONAL}" is 0 in us-west-2`);
    expect(reading?.quotas.map((quota) => [quota.pool.modelId, quota.origin])).toEqual([
      [`global.${haiku.bedrockId}`, 'service-quotas'],
    ]);
  });

  it('reads again once a reading is older than the refresh, and keeps the last good one when that fails', async () => {
    // Prepare
    const clock = { now: 0 };
    const { source, reads } = scripted([{ [GLOBAL]: 500_000 }, { [GLOBAL]: 900_000 }, 'fail']);
    const rates = new ServiceQuotaRates(
      pools,
      source,
      { fallback: 400_000, share: 1, refreshMs: 300_000 },
      { now: () => clock.now },
    );
    await rates.ready();
    const key = GLOBAL_POOL;

    // Act
    clock.now = 299_000;
    const beforeRefresh = rates.rates().perKey?.[key];
    clock.now = 300_000;
    rates.rates();
    await rates.ready();
    await new Promise((resolve) => setImmediate(resolve));
    const raised = rates.rates().perKey?.[key];
    clock.now = 600_000;
    rates.rates();
    await new Promise((resolve) => setImmediate(resolve));
    const afterFailure = rates.rates().perKey?.[key];
    const reported = await rates.reading();

    // Assess
    expect([beforeRefresh, raised, afterFailure].map((rate) => rate?.tokensPerMinute)).toEqual([
      500_000, 900_000, 900_000,
    ]);
    expect(reported?.quotas[0]).toMatchObject({ tokensPerMinute: 900_000, origin: 'service-quotas' });
    expect(reads()).toBe(3);
  });
});
