import { afterEach, describe, expect, it } from 'vitest';
import { modelsCommand } from '../../cli/commands/models.ts';
import { defaultCatalog, useCatalog } from '../../shared/catalog/catalog.ts';
import { mergeCatalog } from '../../shared/catalog/user-catalog.ts';
import { HAIKU_FLEX_PRICES, haikuAtFlex } from '../support/factories.ts';
import { recordingTerminal } from '../support/terminal.ts';

describe('bedrock-batch models', () => {
  it('lists every model as JSON: its id, endpoints, window and 1M mode, and its prices or null when unknown', () => {
    // Prepare
    const term = recordingTerminal();

    // Act
    const code = modelsCommand(['--json'], term);
    const listed = JSON.parse(term.stdout()) as { models: Array<Record<string, unknown>> };

    // Assess
    expect(code).toBe(0);
    expect(listed.models.map((model) => model.key)).toEqual(defaultCatalog.models.map((model) => model.key));
    const byKey = new Map(listed.models.map((model) => [model.key, model]));
    expect(byKey.get('sonnet-4.6')).toMatchObject({
      bedrockId: 'anthropic.claude-sonnet-4-6',
      endpoints: ['global', 'regional'],
      contextWindow: 1_000_000,
      longContext: { mode: 'native' },
      pricesUsdPerMillionTokens: null,
    });
    expect(byKey.get('sonnet-4.5')).toMatchObject({
      longContext: { mode: 'beta', beta: 'context-1m-2025-08-07', retiredOn: '2026-04-30' },
      pricesUsdPerMillionTokens: { input: 3, output: 15 },
    });
    expect(byKey.get('haiku-4.5')).toMatchObject({
      offeredIn: ['US', 'EU', 'AU'],
      endpoints: ['global', 'regional', 'in-region'],
      contextWindow: 200_000,
      longContext: { mode: 'none' },
      batchInference: true,
    });
  });

  it('says in words which models have no known price and which are served through profiles only', () => {
    // Prepare
    const term = recordingTerminal();

    // Act
    modelsCommand([], term);

    // Assess
    expect(term.stdout()).toMatch(
      /sonnet-4\.6 Claude Sonnet 4\.6: anthropic\.claude-sonnet-4-6\n.*\n {2}offered in US, EU, JP, APAC; endpoints global, regional \(inference profiles only\)\n {2}context 1,000,000 tokens \(native\)[^\n]*\n[^\n]*\n {2}prices: unknown/,
    );
    expect(term.stdout()).toMatch(/haiku-4\.5 [^\n]*\n[^\n]*\n[^\n]*\n {2}context 200,000 tokens;/);
  });
});

describe('bedrock-batch models and service tiers', () => {
  afterEach(() => useCatalog(defaultCatalog));

  it("lists the tiers a model takes besides default, with their prices, from the team's catalog", () => {
    // Prepare
    const term = recordingTerminal();
    const catalog = haikuAtFlex();
    useCatalog(
      mergeCatalog(
        {
          models: [
            { ...catalog.models[0], serviceTiers: { ...catalog.models[0]?.serviceTiers, priority: {} } },
          ],
        },
        'tiers.json',
      ),
    );

    // Act
    modelsCommand(['--json'], term);
    const listed = JSON.parse(term.stdout()) as { models: Array<Record<string, unknown>> };
    const text = recordingTerminal();
    modelsCommand([], text);

    // Assess
    const byKey = new Map(listed.models.map((model) => [model.key, model]));
    expect(byKey.get('haiku-4.5')?.serviceTiers).toEqual({ flex: HAIKU_FLEX_PRICES, priority: null });
    expect(byKey.get('opus-4.6')?.serviceTiers).toEqual({});
    expect(text.stdout()).toContain(
      '  service tiers: default, priority (price unknown), flex (input $0.5, output $2.5)\n',
    );
  });
});
