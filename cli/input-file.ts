import { stat } from 'node:fs/promises';
import { UsageError } from './errors.ts';

/** The file a command was given, checked the way a person would want it checked. */
export async function checkInputFile(file: string | undefined): Promise<string> {
  if (file === undefined)
    throw new UsageError(
      'No input file given.',
      'Name a .jsonl file, for example: bedrock-batch run prompts.jsonl',
    );
  const info = await stat(file).catch(() => undefined);
  if (info === undefined) throw new UsageError(`No such file: ${file}.`);
  if (info.isDirectory()) throw new UsageError(`${file} is a directory.`, 'Give a .jsonl file inside it.');
  if (info.size === 0) throw new UsageError(`${file} is empty: there is nothing to run.`);
  return file;
}
