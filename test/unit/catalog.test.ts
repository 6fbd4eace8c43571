import { describe, expect, it } from 'vitest';
import { Catalog, defaultCatalog, modelsData, regionsData } from '../../shared/catalog/catalog.ts';

describe('the shipped model catalog', () => {
  it.each([
    ['opus-4.6', 'anthropic.claude-opus-4-6-v1', 'beta'],
    ['sonnet-4.5', 'anthropic.claude-sonnet-4-5-20250929-v1:0', 'beta'],
    ['sonnet-4', 'anthropic.claude-sonnet-4-20250514-v1:0', 'beta'],
    ['haiku-4.5', 'anthropic.claude-haiku-4-5-20251001-v1:0', 'none'],
  ])('has %s as %s with 1M mode %s (Bedrock ids)', (key, bedrockId, mode) => {
    const model = defaultCatalog.findModel(key);
    expect(model?.bedrockId).toBe(bedrockId);
    expect(model?.longContext.mode).toBe(mode);
  });

  it('keeps the rules of Bedrock as data', () => {
    expect(defaultCatalog.anthropicVersion).toBe('bedrock-2023-05-31');
    expect(defaultCatalog.longContextBeta).toBe('context-1m-2025-08-07');
    expect(defaultCatalog.allowedBetas.has('context-1m-2025-08-07')).toBe(true);
    expect(defaultCatalog.requestBodyLimitBytes).toBe(25_000_000);
    expect(defaultCatalog.standardContextWindow).toBe(200_000);
    expect(defaultCatalog.endpointPriceMultiplier).toEqual({ global: 1, regional: 1.1, 'in-region': 1.1 });
  });

  it('prices every model its sources price, with long-context rates wherever there is a 1M mode', () => {
    for (const model of defaultCatalog.models) {
      const prices = model.prices.standard;
      if (prices === undefined) continue;
      expect(prices.output).toBeGreaterThan(prices.input);
      expect(prices.cacheRead).toBeLessThan(prices.input);
      if (model.longContext.mode !== 'none') expect(model.prices.longContext?.input).toBe(prices.input * 2);
    }
  });

  it('leaves the newest models unpriced rather than guess, and serves them through profiles only', () => {
    // Act
    const unpriced = defaultCatalog.models.filter((model) => model.prices.standard === undefined);

    // Assess
    expect(unpriced.map((model) => [model.key, model.bedrockId, model.inRegion, model.longContext])).toEqual([
      ['opus-4.7', 'anthropic.claude-opus-4-7', false, { mode: 'native', window: 1_000_000 }],
      ['sonnet-4.6', 'anthropic.claude-sonnet-4-6', false, { mode: 'native', window: 1_000_000 }],
    ]);
    expect(defaultCatalog.findModel('sonnet-4.5')?.longContext).toEqual({
      mode: 'beta',
      window: 1_000_000,
      retiredOn: '2026-04-30',
    });
  });

  it.each([
    ['us-west-2', ['us']],
    ['eu-central-1', ['eu']],
    ['ap-northeast-1', ['jp']],
    ['ap-southeast-1', ['apac']],
    ['ap-southeast-2', ['au', 'apac']],
    ['ap-southeast-4', ['au', 'apac']],
    ['sa-east-1', []],
  ])('puts %s in the geographies whose prefixes it may use, the narrowest first: %j', (region, keys) => {
    expect(defaultCatalog.geographiesOfRegion(region).map((geography) => geography.key)).toEqual(keys);
    expect(defaultCatalog.geographyOfRegion(region)?.key).toBe(keys[0]);
  });
});

describe('Catalog validation', () => {
  it('refuses two models claiming one name', () => {
    // Prepare
    const data = structuredClone(modelsData);
    data.models[1]?.aliases.push('opus');

    // Act
    const load = () => new Catalog(data, regionsData);

    // Assess
    expect(load).toThrow(/name "opus" is claimed by both opus-4\.6 and sonnet-4\.5/);
  });

  it('refuses a 1M mode without long-context prices', () => {
    // Prepare
    const data = structuredClone(modelsData) as { models: Array<{ prices: { longContext?: unknown } }> };
    delete data.models[0]?.prices.longContext;

    // Act
    const load = () => new Catalog(data, regionsData);

    // Assess
    expect(load).toThrow(/opus-4\.6 has a 1M mode but no longContext prices/);
  });

  it('names the bad field of a malformed catalog', () => {
    // Act
    const load = () => new Catalog({ ...modelsData, pricesCheckedOn: 'soon' }, regionsData);

    // Assess
    expect(load).toThrow(/The model catalog data is invalid:[\s\S]*pricesCheckedOn/);
  });
});
