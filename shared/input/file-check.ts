/** The input files the pipeline reads: JSON Lines, one request per line, plain or gzip-compressed. */
export const INPUT_SUFFIXES = ['.jsonl', '.jsonl.gz'] as const;

/**
 * The most a compressed input may decompress to, unless the deployment says otherwise: as much as one
 * Bedrock batch inference file. A small gzip of gigabytes (of blank lines, say) is refused, not read for hours.
 */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 1024 ** 3;

/** Whether a key names a gzip-compressed input, which is decompressed once before it is read. */
export function isCompressedInput(key: string): boolean {
  return key.endsWith('.jsonl.gz');
}

/** Why a key cannot be read as an input file, or undefined when its name is that of one. */
export function inputNameProblem(key: string): string | undefined {
  if (INPUT_SUFFIXES.some((suffix) => key.endsWith(suffix))) return undefined;
  const name = key.slice(key.lastIndexOf('/') + 1);
  const fix = key.endsWith('.json')
    ? 'if it holds one JSON array, write one object per line instead (jq -c ".[]" file.json > file.jsonl).'
    : key.endsWith('.gz')
      ? 'name a compressed JSON Lines file .jsonl.gz.'
      : 'write one JSON request per line and name the file .jsonl (or .jsonl.gz, compressed).';
  return `${name} is not a .jsonl or .jsonl.gz file; the pipeline reads JSON Lines: ${fix}`;
}

/** The first bytes of a gzip stream. */
export const GZIP_MAGIC = [0x1f, 0x8b] as const;

/**
 * A problem with the whole file, from its name and first bytes. A compressed file must be gzip data; its
 * content is judged once it is decompressed.
 */
export function fileHeadProblem(key: string, head: Uint8Array): string | undefined {
  if (!isCompressedInput(key)) return fileContentProblem(head);
  if (head.length === 0 || GZIP_MAGIC.every((byte, index) => head[index] === byte)) return undefined;
  const name = key.slice(key.lastIndexOf('/') + 1);
  return `${name} is named .jsonl.gz but is not gzip data: compress it with gzip, or name it .jsonl.`;
}

/** How much of a file's start is looked at for problems that concern the whole file. */
export const FILE_HEAD_BYTES = 64 * 1024;

/** Lines of the head that must all be something other than JSON for the file to be "not JSON Lines at all". */
const LINES_TO_JUDGE = 20;

/**
 * A problem with the whole file, from its first bytes: another text encoding, compression, binary data, a
 * JSON array, or no JSON at all. Found once, it is one clear message instead of an error for every line.
 */
export function fileContentProblem(head: Uint8Array): string | undefined {
  const startsWith = (...bytes: number[]) => bytes.every((byte, index) => head[index] === byte);
  if (startsWith(0xff, 0xfe, 0, 0) || startsWith(0, 0, 0xfe, 0xff))
    return 'The file is UTF-32 text; JSON Lines are UTF-8. Save it as UTF-8 and upload it again.';
  if (startsWith(0xff, 0xfe) || startsWith(0xfe, 0xff))
    return 'The file is UTF-16 text; JSON Lines are UTF-8. Save it as UTF-8 and upload it again.';
  if (startsWith(...GZIP_MAGIC))
    return 'The file is gzip-compressed but named .jsonl: name it .jsonl.gz, and it is decompressed as it is read.';
  if (startsWith(0x50, 0x4b, 0x03, 0x04))
    return 'The file is a ZIP archive. Extract the .jsonl file and upload that.';
  if (head.includes(0))
    return 'The file holds NUL bytes: it is binary, or UTF-16 without a byte-order mark. JSON Lines are UTF-8 text.';
  const text = Buffer.from(head)
    .toString('utf8')
    .replace(/^\uFEFF/, '');
  if (text.trimStart().startsWith('['))
    return 'The file is a JSON array, not JSON Lines. Write one object per line (jq -c ".[]" file.json > file.jsonl).';
  // The last line of the head may be cut short; judge only complete ones.
  const lines = text
    .split('\n')
    .slice(0, head.length >= FILE_HEAD_BYTES ? -1 : undefined)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(0, LINES_TO_JUDGE);
  if (lines.length > 0 && lines.every((line) => !line.startsWith('{') && !isJson(line)))
    return `The file does not look like JSON Lines: none of its first ${lines.length === 1 ? 'line is' : `${lines.length} lines is`} a JSON object. Write one JSON request per line.`;
  return undefined;
}

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
