import { readFile } from 'node:fs/promises';
import { type Catalog, catalogInUse, useCatalog } from '../shared/catalog/catalog.ts';
import { mergeCatalog } from '../shared/catalog/user-catalog.ts';
import { UsageError } from './errors.ts';

/**
 * The options every command takes, about the catalog: models to add to it or change in it, from a JSON file;
 * and whether a model id of Bedrock's form that it does not list runs (allow, the default here) or is refused.
 */
const CATALOG_OPTION = '--catalog';
const UNKNOWN_MODELS_OPTION = '--unknown-models';
const UNKNOWN_MODELS_CHOICES = ['allow', 'refuse'] as const;

export const CATALOG_HELP =
  'Every command takes --catalog file.json: {"models": [...]} in the form of shared/catalog/models.json, to run a\n' +
  'model that shipped after this release or give a price the catalog lacks (a known key changes only the\n' +
  'fields it gives). "bedrock-batch models --catalog file.json" shows the result. A model id of Bedrock\'s form\n' +
  'the catalog does not list (anthropic.claude-..., with or without a profile prefix) runs, its cost and 1M\n' +
  'context unknown, unless --unknown-models refuse.';

/**
 * Takes `--catalog <file>` and `--unknown-models allow|refuse` (also as `--option=value`) out of the arguments
 * and runs `run` with the catalog they give; the catalog the process had is back once `run` ends.
 */
export async function withCatalogOption<Result>(
  argv: readonly string[],
  run: (args: string[]) => Promise<Result>,
): Promise<Result> {
  const { values, args } = optionsOf(argv, [CATALOG_OPTION, UNKNOWN_MODELS_OPTION]);
  const file = values.get(CATALOG_OPTION);
  const unknownModels = values.get(UNKNOWN_MODELS_OPTION) ?? 'allow';
  if (!(UNKNOWN_MODELS_CHOICES as readonly string[]).includes(unknownModels))
    throw new UsageError(
      `${UNKNOWN_MODELS_OPTION} ${unknownModels} is not a choice.`,
      `Use ${UNKNOWN_MODELS_CHOICES.join(' or ')}.`,
    );
  const before: Catalog = catalogInUse();
  const catalog = file === undefined ? before : mergeCatalog(await readCatalogFile(file), file);
  useCatalog(catalog.withUnknownModels(unknownModels === 'allow'));
  try {
    return await run(args);
  } finally {
    useCatalog(before);
  }
}

/** The values of `names` given in `argv` (`--name value` or `--name=value`), and the other arguments. */
function optionsOf(
  argv: readonly string[],
  names: readonly string[],
): { values: Map<string, string>; args: string[] } {
  const args: string[] = [];
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    const name = names.find((candidate) => arg === candidate || arg.startsWith(`${candidate}=`));
    if (name === undefined) {
      args.push(arg);
      continue;
    }
    if (arg !== name) {
      values.set(name, arg.slice(name.length + 1));
      continue;
    }
    const value = argv[index + 1];
    if (value === undefined || value.startsWith('-'))
      throw new UsageError(
        `${name} needs a value.`,
        `Give it as ${name} ${name === CATALOG_OPTION ? 'models.json' : 'refuse'}.`,
      );
    values.set(name, value);
    index += 1;
  }
  return { values, args };
}

async function readCatalogFile(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`Cannot read the catalog file ${file}.`, 'Check the path.');
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`The catalog file ${file} is not JSON.`, 'A catalog file is {"models": [...]}.');
  }
}
