import type { Catalog, CatalogModel } from '../catalog/catalog.ts';
import { RecordRejectedError } from '../errors.ts';
import type { TokenEstimate } from './token-estimate.ts';

export interface ContextRoute {
  /** The beta flag to add to the body's `anthropic_beta`, if the record needs the 1M window through a beta. */
  readonly beta: string | undefined;
  /** Whether the record may exceed the standard window (it is then billed at long-context rates if it does). */
  readonly longContext: boolean;
}

/**
 * Decides how a record fits the model's context window. Input plus `max_tokens` must fit: Claude refuses a
 * request whose prompt and requested output together exceed the window.
 */
export function routeContext(
  model: CatalogModel,
  estimate: TokenEstimate,
  maxTokens: number,
  catalog: Catalog,
): ContextRoute {
  const standardWindow = catalog.standardContextWindow;
  const mayNeed = estimate.upper + maxTokens > standardWindow;
  const surelyNeeds = estimate.lower + maxTokens > standardWindow;
  if (!mayNeed) return { beta: undefined, longContext: false };

  const { longContext } = model;
  // A model the catalog does not know: its window is Bedrock's to enforce, and no beta is guessed at.
  if (longContext.mode === 'unknown') return { beta: undefined, longContext: true };
  if (longContext.mode === 'none') {
    if (surelyNeeds) {
      throw new RecordRejectedError(
        'CONTEXT_TOO_LONG',
        `The input (at least ${estimate.lower.toLocaleString('en-US')} tokens) plus max_tokens ${maxTokens} exceeds ${model.displayName}'s ${standardWindow.toLocaleString('en-US')}-token window, and ${model.displayName} has no 1M-context mode.`,
        { fix: `Use a model with 1M context (${longContextModels(catalog)}) or split the document.` },
      );
    }
    return { beta: undefined, longContext: false };
  }
  if (estimate.lower + maxTokens > longContext.window) {
    throw new RecordRejectedError(
      'CONTEXT_TOO_LONG',
      `The input (at least ${estimate.lower.toLocaleString('en-US')} tokens) plus max_tokens ${maxTokens} exceeds even the ${longContext.window.toLocaleString('en-US')}-token window of ${model.displayName}.`,
      { fix: 'Split the document into parts under that size.' },
    );
  }
  return { beta: longContext.mode === 'beta' ? catalog.longContextBeta : undefined, longContext: true };
}

function longContextModels(catalog: Catalog): string {
  return catalog.models
    .filter((model) => model.longContext.mode === 'beta' || model.longContext.mode === 'native')
    .map((model) => model.key)
    .join(', ');
}
