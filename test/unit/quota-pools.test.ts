import { describe, expect, it } from 'vitest';
import { defaultCatalog, type EndpointKind } from '../../shared/catalog/catalog.ts';
import { PipelineError } from '../../shared/errors.ts';
import { parseEndpoints, poolName, poolsFor, type QuotaPool } from '../../shared/quotas/pools.ts';
import {
  type AppliedQuota,
  matchPoolQuotas,
  type QuotaSource,
  readPoolQuotas,
} from '../../shared/quotas/service-quotas.ts';

function model(key: string) {
  const found = defaultCatalog.findModel(key);
  if (found === undefined) throw new Error(`no ${key} in the catalog`);
  return found;
}

const haiku = model('haiku-4.5');
const sonnet = model('sonnet-4.5');

function pool(endpoint: EndpointKind, region = 'us-east-1', of = haiku): QuotaPool {
  const plan = poolsFor(of, { endpoints: [endpoint], regions: [region] });
  const [only] = plan.pools;
  if (only === undefined) throw new Error('no pool');
  return only;
}

function quota(name: string, value: number, code = 'L-00000000'): AppliedQuota {
  return { name, code, value };
}

function errorCode(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    return error instanceof PipelineError ? error.code : 'not a PipelineError';
  }
}

describe('the pools a file may use', () => {
  describe.each([
    {
      endpoints: ['global', 'regional', 'in-region'] as EndpointKind[],
      regions: ['us-east-1', 'us-west-2'],
      pools: [
        'us-east-1#global.anthropic.claude-haiku-4-5-20251001-v1:0',
        'us-east-1#us.anthropic.claude-haiku-4-5-20251001-v1:0',
        'us-east-1#anthropic.claude-haiku-4-5-20251001-v1:0',
        'us-west-2#global.anthropic.claude-haiku-4-5-20251001-v1:0',
        'us-west-2#us.anthropic.claude-haiku-4-5-20251001-v1:0',
        'us-west-2#anthropic.claude-haiku-4-5-20251001-v1:0',
      ],
    },
    {
      endpoints: ['global'] as EndpointKind[],
      regions: ['us-east-1', 'eu-west-1'],
      pools: [
        'us-east-1#global.anthropic.claude-haiku-4-5-20251001-v1:0',
        'eu-west-1#global.anthropic.claude-haiku-4-5-20251001-v1:0',
      ],
    },
    {
      endpoints: ['regional', 'in-region'] as EndpointKind[],
      regions: ['eu-central-1', 'eu-west-1'],
      pools: [
        'eu-central-1#eu.anthropic.claude-haiku-4-5-20251001-v1:0',
        'eu-central-1#anthropic.claude-haiku-4-5-20251001-v1:0',
        'eu-west-1#eu.anthropic.claude-haiku-4-5-20251001-v1:0',
        'eu-west-1#anthropic.claude-haiku-4-5-20251001-v1:0',
      ],
    },
  ])('$endpoints from $regions', ({ endpoints, regions, pools }) => {
    it('are every region with every endpoint kind, in the order of preference given', () => {
      // Act
      const plan = poolsFor(haiku, { endpoints, regions });

      // Assess
      expect(plan.pools.map(poolName)).toEqual(pools);
      expect(plan.leftOut).toEqual([]);
    });
  });

  it.each([
    {
      endpoints: ['regional'] as EndpointKind[],
      regions: ['us-east-1', 'eu-west-1'],
      code: 'RESIDENCY_REGION',
    },
    {
      endpoints: ['in-region'] as EndpointKind[],
      regions: ['eu-west-1', 'us-east-1'],
      code: 'RESIDENCY_REGION',
    },
    {
      endpoints: ['global'] as EndpointKind[],
      regions: ['us-east-1', 'mars-north-1'],
      code: 'UNKNOWN_REGION',
    },
    { endpoints: ['global'] as EndpointKind[], regions: [], code: 'NO_POOLS' },
    { endpoints: [] as EndpointKind[], regions: ['us-east-1'], code: 'NO_POOLS' },
  ])('refuses $regions on $endpoints with $code', ({ endpoints, regions, code }) => {
    expect(errorCode(() => poolsFor(haiku, { endpoints, regions }))).toBe(code);
  });

  it('leaves out the regions of a geography that does not offer the model, and says why', () => {
    // Act: Sonnet 4.5 is not offered in APAC.
    const plan = poolsFor(sonnet, { endpoints: ['global'], regions: ['us-east-1', 'ap-south-1'] });

    // Assess
    expect(plan.pools.map((each) => each.region)).toEqual(['us-east-1']);
    expect(plan.leftOut).toEqual([
      { region: 'ap-south-1', endpoint: 'global', reason: expect.stringContaining('not offered in APAC') },
    ]);
  });

  it('leaves out the in-region pool of a model served through inference profiles only, and says why', () => {
    // Prepare
    const profileOnly = model('sonnet-4.6');

    // Act
    const plan = poolsFor(profileOnly, { endpoints: ['global', 'in-region'], regions: ['us-east-1'] });

    // Assess
    expect(plan.pools.map((each) => each.modelId)).toEqual(['global.anthropic.claude-sonnet-4-6']);
    expect(plan.leftOut).toEqual([
      {
        region: 'us-east-1',
        endpoint: 'in-region',
        reason: expect.stringContaining('served through inference profiles only'),
      },
    ]);
  });

  it.each([
    { text: 'global+regional', endpoints: ['global', 'regional'] },
    { text: 'global, in-region', endpoints: ['global', 'in-region'] },
    { text: 'regional regional', endpoints: ['regional'] },
  ])('reads the endpoint list "$text"', ({ text, endpoints }) => {
    expect(parseEndpoints(text, '--endpoints')).toEqual(endpoints);
  });

  it.each(['', 'global+worldwide'])('refuses the endpoint list "%s", naming the choices', (text) => {
    expect(() => parseEndpoints(text, '--endpoints')).toThrow(/global, regional, in-region/);
  });
});

describe("a pool's quotas in Service Quotas", () => {
  const listed = [
    quota('Global cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5', 2_000_000),
    quota('Cross-Region InvokeModel tokens per minute for Anthropic Claude Haiku 4.5', 800_000),
    quota('On-demand model inference tokens per minute for anthropic claude haiku 4.5', 400_000),
    quota(
      'Model invocation max tokens per day for Anthropic Claude Haiku 4.5 (doubled for cross-region calls)',
      1e9,
    ),
    quota(
      'On-demand model inference tokens per minute for Anthropic Claude Sonnet 4.5 V1 1M Context Length',
      1,
    ),
    quota('On-demand model inference tokens per minute for Anthropic Claude Sonnet 4.5 V1', 200_000),
    quota('On-demand model inference tokens per minute for Anthropic Claude Sonnet 4 V1', 3),
    quota('On-demand model inference tokens per minute for Amazon Nova Pro', 4),
  ];

  it.each([
    { endpoint: 'global' as const, of: haiku, minute: 2_000_000, day: 2e9 },
    { endpoint: 'regional' as const, of: haiku, minute: 800_000, day: 2e9 },
    { endpoint: 'in-region' as const, of: haiku, minute: 400_000, day: 1e9 },
    { endpoint: 'in-region' as const, of: sonnet, minute: 200_000, day: undefined },
  ])('$of.displayName on $endpoint: $minute a minute, $day a day', ({ endpoint, of, minute, day }) => {
    // Act
    const match = matchPoolQuotas(pool(endpoint, 'us-east-1', of), listed);

    // Assess: whole names only (a global quota is not a cross-region one), never the 1M-context quota, and
    // the daily quota doubled for cross-region calls.
    expect(match.tokensPerMinute?.value).toBe(minute);
    expect(match.tokensPerDay?.value).toBe(day);
  });
});

/** A Service Quotas that lists `quotas` in every region, or fails in those named, and counts its reads. */
function quotaSource(quotas: readonly AppliedQuota[], failing: readonly string[] = []) {
  const reads: string[] = [];
  const source: QuotaSource = {
    appliedQuotas: async (region) => {
      reads.push(region);
      if (failing.includes(region)) throw new Error('AccessDeniedException');
      return quotas;
    },
  };
  return { source, reads };
}

describe('reading the quotas of pools', () => {
  const haikuPools = poolsFor(haiku, {
    endpoints: ['global', 'regional', 'in-region'],
    regions: ['us-east-1', 'us-west-2'],
  }).pools;
  const listed = [
    quota('Global cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5', 1_000_001),
    quota('Cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5', 0),
  ];

  it('reads each region once, spends the share, leaves out a quota of 0 and falls back where none is named', async () => {
    // Prepare
    const { source, reads } = quotaSource(listed);

    // Act
    const reading = await readPoolQuotas(haikuPools, source, { fallback: 50_000, share: 0.5 });

    // Assess
    expect(reads).toEqual(['us-east-1', 'us-west-2']);
    expect(
      reading.quotas.map(({ pool: each, origin, usableTokensPerMinute }) => [
        each.region,
        each.endpoint,
        origin,
        usableTokensPerMinute,
      ]),
    ).toEqual([
      ['us-east-1', 'global', 'service-quotas', 500_000],
      ['us-east-1', 'in-region', 'fallback', 25_000],
      ['us-west-2', 'global', 'service-quotas', 500_000],
      ['us-west-2', 'in-region', 'fallback', 25_000],
    ]);
    expect(reading.quotas[0]?.matched).toEqual([
      'Global cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5',
    ]);
    expect(reading.quotas[1]?.warning).toMatch(/No quota named "On-demand model inference tokens per minute/);
    expect(reading.leftOut.map(({ pool: each, reason }) => [each.endpoint, reason])).toEqual([
      ['regional', expect.stringContaining('is 0 in us-east-1')],
      ['regional', expect.stringContaining('is 0 in us-west-2')],
    ]);
  });

  it('leaves out a pool whose daily quota is 0, whatever its quota for the minute', async () => {
    // Prepare
    const { source } = quotaSource([
      ...listed,
      quota('Model invocation max tokens per day for Anthropic Claude Haiku 4.5', 0),
    ]);

    // Act
    const reading = await readPoolQuotas(haikuPools.slice(0, 1), source, { fallback: 50_000, share: 1 });

    // Assess
    expect(reading.quotas).toEqual([]);
    expect(reading.leftOut[0]?.reason).toMatch(/"Model invocation max tokens per day for .*" is 0/);
  });

  it('falls back with a warning in a region whose quotas cannot be read', async () => {
    // Prepare
    const { source } = quotaSource(listed, ['us-west-2']);

    // Act
    const reading = await readPoolQuotas(haikuPools, source, { fallback: 50_000, share: 1 });

    // Assess
    const west = reading.quotas.filter(({ pool: each }) => each.region === 'us-west-2');
    expect(west.map(({ origin, tokensPerMinute }) => [origin, tokensPerMinute])).toEqual([
      ['fallback', 50_000],
      ['fallback', 50_000],
      ['fallback', 50_000],
    ]);
    expect(west[0]?.warning).toMatch(/could not be read in us-west-2 \(AccessDeniedException\)/);
  });

  it('takes a configured quota over Service Quotas, which it does not read', async () => {
    // Prepare
    const { source, reads } = quotaSource(listed);

    // Act
    const reading = await readPoolQuotas(haikuPools, source, {
      configured: 30_000,
      fallback: 50_000,
      share: 1,
    });

    // Assess
    expect(reads).toEqual([]);
    expect(
      new Set(reading.quotas.map(({ origin, tokensPerMinute }) => `${origin} ${tokensPerMinute}`)),
    ).toEqual(new Set(['configured 30000']));
  });

  it.each([0, 1.5, Number.NaN])('refuses a quota share of %s', async (share) => {
    await expect(readPoolQuotas(haikuPools, quotaSource([]).source, { fallback: 1, share })).rejects.toThrow(
      /quota share/,
    );
  });
});
