import { open, stat } from 'node:fs/promises';
import { FILE_HEAD_BYTES, fileHeadProblem, inputNameProblem } from '../shared/input/file-check.ts';
import { UsageError } from './errors.ts';

/**
 * The file a command was given, checked the way a person would want it checked: there, not empty, a .jsonl
 * (or .jsonl.gz) file, and JSON Lines as a whole (the same checks the pipeline makes of an upload).
 */
export async function checkInputFile(file: string | undefined, command: string): Promise<string> {
  if (file === undefined)
    throw new UsageError(
      'No input file given.',
      `Name a .jsonl file, for example: bedrock-batch ${command} prompts.jsonl`,
    );
  const info = await stat(file).catch(() => undefined);
  if (info === undefined) throw new UsageError(`No such file: ${file}.`);
  if (info.isDirectory()) throw new UsageError(`${file} is a directory.`, 'Give a .jsonl file inside it.');
  if (info.size === 0) throw new UsageError(`${file} is empty: there is nothing to run.`);
  const nameProblem = inputNameProblem(file);
  if (nameProblem !== undefined) throw new UsageError(nameProblem);
  const handle = await open(file);
  try {
    const head = new Uint8Array(Math.min(info.size, FILE_HEAD_BYTES));
    await handle.read(head, 0, head.length, 0);
    const contentProblem = fileHeadProblem(file, head);
    if (contentProblem !== undefined) throw new UsageError(`${file}: ${contentProblem}`);
  } finally {
    await handle.close();
  }
  return file;
}

/** Where results go: a directory, or a path to create one at; never an existing file (found before any work). */
export async function checkOutputDirectory(directory: string): Promise<void> {
  const info = await stat(directory).catch(() => undefined);
  if (info !== undefined && !info.isDirectory())
    throw new UsageError(`--out ${directory} is a file.`, 'Name a directory (it is created if missing).');
}
