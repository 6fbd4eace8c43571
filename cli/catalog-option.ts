import { readFile } from 'node:fs/promises';
import { type Catalog, catalogInUse, useCatalog } from '../shared/catalog/catalog.ts';
import { mergeCatalog } from '../shared/catalog/user-catalog.ts';
import { UsageError } from './errors.ts';

/** The option every command takes: models to add to the catalog, or to change in it, from a JSON file. */
const CATALOG_OPTION = '--catalog';

export const CATALOG_HELP =
  'Every command takes --catalog file.json: {"models": [...]} in the form of shared/catalog/models.json, to run a\n' +
  'model that shipped after this release or give a price the catalog lacks (a known key changes only the\n' +
  'fields it gives). "bedrock-batch models --catalog file.json" shows the result.';

/**
 * Takes `--catalog <file>` (or `--catalog=<file>`) out of the arguments and, when given, runs `run` with the
 * file's models merged into the catalog; the catalog the process had is back once `run` ends.
 */
export async function withCatalogOption<Result>(
  argv: readonly string[],
  run: (args: string[]) => Promise<Result>,
): Promise<Result> {
  const { file, args } = catalogFileOf(argv);
  if (file === undefined) return run(args);
  const before: Catalog = catalogInUse();
  useCatalog(mergeCatalog(await readCatalogFile(file), file));
  try {
    return await run(args);
  } finally {
    useCatalog(before);
  }
}

function catalogFileOf(argv: readonly string[]): { file: string | undefined; args: string[] } {
  const args: string[] = [];
  let file: string | undefined;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    if (arg === CATALOG_OPTION) {
      file = argv[index + 1];
      if (file === undefined || file.startsWith('-'))
        throw new UsageError(`${CATALOG_OPTION} needs a file.`, `Give it as ${CATALOG_OPTION} models.json.`);
      index += 1;
    } else if (arg.startsWith(`${CATALOG_OPTION}=`)) file = arg.slice(CATALOG_OPTION.length + 1);
    else args.push(arg);
  }
  return { file, args };
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
