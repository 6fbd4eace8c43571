import { afterEach, describe, expect, it } from 'vitest';
import { catalogInUse, defaultCatalog, useCatalog } from '../../shared/catalog/catalog.ts';
import { mergeCatalog } from '../../shared/catalog/user-catalog.ts';
import { loadConfig, workerSettings } from '../../shared/config.ts';
import { costOfRequest } from '../../shared/cost/cost.ts';
import { ConfigurationError, PipelineError } from '../../shared/errors.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import { newCatalogModel } from '../support/factories.ts';
import { thrown } from '../support/thrown.ts';

const SONNET_4_6_PRICES = {
  standard: { input: 3, output: 15, cacheWrite: 3.75, cacheWrite1h: 6, cacheRead: 0.3 },
  longContext: { input: 6, output: 22.5, cacheWrite: 7.5, cacheWrite1h: 12, cacheRead: 0.6 },
};

/** A model that shipped after this release, with a 1M window of its own. */
function newModel(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return newCatalogModel({
    cacheTtls: ['5m', '1h'],
    longContext: { mode: 'native', window: 1000000 },
    prices: {
      standard: { input: 1, output: 5, cacheWrite: 1.25, cacheWrite1h: 2, cacheRead: 0.1 },
      longContext: { input: 2, output: 7.5, cacheWrite: 2.5, cacheWrite1h: 4, cacheRead: 0.2 },
    },
    ...overrides,
  });
}

afterEach(() => useCatalog(defaultCatalog));

describe('a user catalog merged over the built-in one', () => {
  it('adds a new model, callable by its names through its profiles, at its prices', () => {
    // Act
    const catalog = mergeCatalog({ models: [newModel()] }, 'models.json');

    // Assess
    expect(catalog.models).toHaveLength(defaultCatalog.models.length + 1);
    expect(resolveModel({ model: 'claude-haiku-5', region: 'eu-west-1' }, catalog).modelId).toBe(
      'global.anthropic.claude-haiku-5',
    );
    const model = catalog.findModel('haiku-5');
    expect(
      model === undefined
        ? undefined
        : costOfRequest({ input_tokens: 1_000, output_tokens: 0 }, model, 'global')?.total,
    ).toBe(1_000_000);
  });

  it('changes only the fields an entry of a known model gives: a price the built-in catalog lacks', () => {
    // Act
    const catalog = mergeCatalog(
      { models: [{ key: 'sonnet-4.6', prices: SONNET_4_6_PRICES }] },
      'models.json',
    );

    // Assess
    const sonnet = catalog.findModel('sonnet-4.6');
    expect(sonnet?.prices).toEqual(SONNET_4_6_PRICES);
    expect(sonnet?.bedrockId).toBe('anthropic.claude-sonnet-4-6');
    expect(sonnet?.longContext).toEqual({ mode: 'native', window: 1_000_000 });
    expect(catalog.models.map((model) => model.key)).toEqual(defaultCatalog.models.map((model) => model.key));
  });

  it.each<[string, unknown, RegExp]>([
    ['no models list', { model: [] }, /The catalog models\.json is invalid: .*models/s],
    ['an entry without its key', { models: [{ displayName: 'x' }] }, /each model needs its key/],
    [
      'a new model missing a field',
      { models: [newModel({ bedrockId: undefined })] },
      /models\[0\] \(key "haiku-5", a new model needs every field\).*bedrockId/s,
    ],
    [
      'an id that is not Anthropic on Bedrock',
      { models: [newModel({ bedrockId: 'meta.llama-5' })] },
      /bedrockId/,
    ],
    [
      'a price as text',
      { models: [{ key: 'opus-4.6', prices: { standard: { ...SONNET_4_6_PRICES.standard, input: '5' } } }] },
      /models\[0\] \(key "opus-4\.6", an override of a known model\).*prices\.standard\.input/s,
    ],
    [
      'a name another model already has',
      { models: [newModel({ aliases: ['haiku'] })] },
      /name "haiku" is claimed by both/,
    ],
  ])('refuses %s, naming the entry and the field', (_case, user, message) => {
    // Act
    const error = thrown(PipelineError, () => mergeCatalog(user, 'models.json'));

    // Assess
    expect(error.code).toBe('INVALID_CATALOG');
    expect(error.message).toMatch(message);
  });
});

describe("a deployment's catalog at a function's cold start", () => {
  const settings = {
    LEDGER_TABLE_NAME: 'ledger',
    BUCKET_NAME: 'bucket',
    RECORD_QUEUE_URL: 'http://queue',
    FINALIZE_QUEUE_URL: 'http://finalize',
    BEDROCK_REGION: 'us-west-2',
    BEDROCK_MODEL: 'haiku-5',
  };

  it('is merged before the settings are read, so a setting may name a model it adds', () => {
    // Act
    const config = loadConfig(workerSettings, {
      ...settings,
      CATALOG_MODELS: JSON.stringify({ models: [newModel()] }),
    });

    // Assess
    expect(config.BEDROCK_MODEL).toBe('haiku-5');
    expect(catalogInUse().findModel('claude-haiku-5')?.key).toBe('haiku-5');
  });

  it('is refused by name when it is not JSON, and a model it does not add is refused as unknown', () => {
    // Act
    const notJson = thrown(ConfigurationError, () =>
      loadConfig(workerSettings, { ...settings, CATALOG_MODELS: '{models' }),
    );
    const unknown = thrown(ConfigurationError, () => loadConfig(workerSettings, settings));

    // Assess
    expect(notJson.message).toMatch(/CATALOG_MODELS is not JSON/);
    expect(unknown.message).toMatch(/BEDROCK_MODEL is not usable: Unknown model "haiku-5"/);
  });
});
