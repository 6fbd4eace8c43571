import { z } from 'zod';
import { PipelineError } from '../errors.ts';
import { Catalog, modelSchema, modelsData, regionsData } from './catalog.ts';

/**
 * A user's catalog: a `models` list of entries like the built-in catalog's (shared/catalog/models.json),
 * for a model that shipped after this release or a price the built-in catalog lacks. An entry whose `key`
 * the catalog knows overrides only the fields it gives (a field given replaces that field whole); a new key
 * is a whole entry. Merged over the built-in catalog, and checked as it is.
 */
export const userCatalogSchema = z.strictObject({
  about: z.string().optional(),
  models: z
    .array(z.looseObject({ key: z.string({ error: 'each model needs its key' }).min(1) }))
    .min(1, 'lists no model'),
});

export type UserCatalog = z.input<typeof userCatalogSchema>;

/** The built-in catalog with `user`'s models merged in; a bad entry names itself, the field and the fix. */
export function mergeCatalog(user: unknown, source: string): Catalog {
  const parsed = userCatalogSchema.safeParse(user);
  if (!parsed.success) throw invalid(source, z.prettifyError(parsed.error));
  const builtIn = new Map(modelsData.models.map((model) => [model.key, model]));
  const merged = new Map<string, unknown>(builtIn);
  parsed.data.models.forEach((entry, index) => {
    const known = builtIn.get(entry.key);
    const schema = known === undefined ? modelSchema : modelSchema.partial();
    const checked = schema.safeParse(entry);
    if (!checked.success) {
      const what = known === undefined ? 'a new model needs every field' : 'an override of a known model';
      throw invalid(
        source,
        `models[${index}] (key "${entry.key}", ${what}): ${z.prettifyError(checked.error)}`,
        'Give each field in the form shared/catalog/models.json uses; `bedrock-batch models --json` shows the built-in entries.',
      );
    }
    merged.set(entry.key, { ...known, ...entry });
  });
  try {
    return new Catalog({ ...modelsData, models: [...merged.values()] }, regionsData);
  } catch (error) {
    if (error instanceof PipelineError) throw invalid(source, error.message);
    throw error;
  }
}

function invalid(source: string, problem: string, fix?: string): PipelineError {
  return new PipelineError('INVALID_CATALOG', `The catalog ${source} is invalid: ${problem}`, {
    fix:
      fix ??
      'A catalog file is {"models": [...]} with entries in the form of shared/catalog/models.json; an entry with a known key changes only the fields it gives.',
  });
}
