import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { RecordRejectedError } from '../../shared/errors.ts';
import { routeContext } from '../../shared/request/long-context.ts';
import { catalogWith } from '../support/factories.ts';

const model = (key: string, catalog = defaultCatalog) => {
  const found = catalog.findModel(key);
  if (found === undefined) throw new Error(`no ${key} in the catalog`);
  return found;
};

// A catalog where Sonnet 4.5 has a native 1M window, as later model pages describe for newer models.
const nativeCatalog = catalogWith((data) => {
  const sonnet = data.models.find((entry) => entry.key === 'sonnet-4.5');
  if (sonnet !== undefined)
    sonnet.longContext = { mode: 'native', window: 1_000_000 } as typeof sonnet.longContext;
});

describe('routeContext', () => {
  describe.each([
    // model, lower, upper, max_tokens, expected beta, long context
    ['opus-4.6', 10_000, 30_000, 4_096, undefined, false],
    ['opus-4.6', 50_000, 195_904, 4_096, undefined, false],
    ['opus-4.6', 50_000, 195_905, 4_096, 'context-1m-2025-08-07', true],
    ['sonnet-4.5', 300_000, 900_000, 8_000, 'context-1m-2025-08-07', true],
    ['sonnet-4', 100_000, 300_000, 1_000, 'context-1m-2025-08-07', true],
    ['opus-4.6', 995_000, 2_000_000, 5_000, 'context-1m-2025-08-07', true],
    // Native 1M: long documents go to the 1M window with no beta sent.
    ['sonnet-4.6', 300_000, 900_000, 8_000, undefined, true],
    ['opus-4.7', 50_000, 195_905, 4_096, undefined, true],
    // No 1M mode: a record that may fit is sent without a beta and Bedrock has the last word.
    ['haiku-4.5', 150_000, 400_000, 1_000, undefined, false],
  ] as const)(
    '%s with input %i..%i tokens and max_tokens %i',
    (key, lower, upper, maxTokens, beta, longContext) => {
      it(`routes with beta ${beta ?? 'none'}`, () => {
        // Act
        const route = routeContext(model(key), { lower, upper }, maxTokens, defaultCatalog);

        // Assess
        expect(route).toEqual({ beta, longContext });
      });
    },
  );

  it('adds no beta for a model with a native 1M window', () => {
    // Act
    const route = routeContext(
      model('sonnet-4.5', nativeCatalog),
      { lower: 300_000, upper: 900_000 },
      1_000,
      nativeCatalog,
    );

    // Assess
    expect(route).toEqual({ beta: undefined, longContext: true });
  });

  describe.each([
    [
      'haiku-4.5',
      199_000,
      600_000,
      2_000,
      /no 1M-context mode.*Use a model with 1M context \(opus-4\.6, sonnet-4\.5, sonnet-4, opus-4\.7, sonnet-4\.6\)/,
    ],
    ['opus-4.6', 1_000_000, 3_000_000, 1, /exceeds even the 1,000,000-token window.*Split the document/],
    ['sonnet-4.5', 999_000, 3_000_000, 4_096, /exceeds even the 1,000,000-token window/],
  ] as const)('%s with input at least %i tokens', (key, lower, upper, maxTokens, message) => {
    it('is refused as CONTEXT_TOO_LONG with the fix', () => {
      // Act
      const route = () => routeContext(model(key), { lower, upper }, maxTokens, defaultCatalog);

      // Assess
      expect(route).toThrow(RecordRejectedError);
      expect(route).toThrow(message);
    });
  });
});
