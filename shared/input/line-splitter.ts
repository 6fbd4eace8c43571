/** One non-blank line of a JSONL file, located by byte range so it can be read again by reference. */
export interface RawLine {
  /** 1-based, counting blank lines too, as an editor shows them. */
  readonly lineNumber: number;
  /** Offset of the first content byte (after a BOM on line 1). */
  readonly byteStart: number;
  /** Offset just past the last content byte (before any `\r\n` or `\n`). */
  readonly byteEnd: number;
  /** The content bytes; undefined when the line is longer than `maxLineBytes` and was not kept. */
  readonly bytes: Uint8Array | undefined;
}

export interface SplitOptions {
  /** Lines longer than this are reported without their bytes, so memory stays flat whatever the file holds. */
  readonly maxLineBytes: number;
  /** Where `chunks` starts in the file and which line starts there, for a reader that resumes mid-file. */
  readonly startByte?: number;
  readonly startLineNumber?: number;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const UTF8_BOM = [0xef, 0xbb, 0xbf] as const;

/**
 * Splits a byte stream into lines without decoding it (invalid UTF-8 is the parser's finding, per line) and
 * without holding more than one line. Blank lines (only spaces, tabs or `\r`) are skipped but counted.
 */
export async function* splitLines(
  chunks: AsyncIterable<Uint8Array>,
  options: SplitOptions,
): AsyncGenerator<RawLine> {
  let lineNumber = options.startLineNumber ?? 1;
  let lineStart = options.startByte ?? 0;
  let position = lineStart;
  let pieces: Uint8Array[] = [];
  let keptBytes = 0;
  let oversize = false;

  const finishLine = (lineEnd: number): RawLine | undefined => {
    const whole = oversize ? undefined : concat(pieces, keptBytes);
    const line = trimLine(whole, options.maxLineBytes, lineNumber, lineStart, lineEnd);
    lineNumber += 1;
    lineStart = lineEnd + 1;
    pieces = [];
    keptBytes = 0;
    oversize = false;
    return line;
  };

  for await (const chunk of chunks) {
    let from = 0;
    while (from < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, from);
      const to = newline === -1 ? chunk.length : newline;
      if (!oversize) {
        keptBytes += to - from;
        if (keptBytes > options.maxLineBytes + 1) {
          // +1 leaves room for a `\r` that trimLine removes before the limit is judged.
          oversize = true;
          pieces = [];
        } else if (to > from) {
          pieces.push(chunk.subarray(from, to));
        }
      }
      position += to - from;
      if (newline === -1) break;
      const line = finishLine(position);
      position += 1;
      if (line !== undefined) yield line;
      from = newline + 1;
    }
  }
  if (position > lineStart || oversize) {
    const line = finishLine(position);
    if (line !== undefined) yield line;
  }
}

function trimLine(
  whole: Uint8Array | undefined,
  maxLineBytes: number,
  lineNumber: number,
  lineStart: number,
  lineEnd: number,
): RawLine | undefined {
  if (whole === undefined) {
    return { lineNumber, byteStart: lineStart, byteEnd: lineEnd, bytes: undefined };
  }
  let start = 0;
  let end = whole.length;
  if (lineStart === 0 && UTF8_BOM.every((byte, index) => whole[index] === byte)) start = UTF8_BOM.length;
  if (end > start && whole[end - 1] === CARRIAGE_RETURN) end -= 1;
  const content = whole.subarray(start, end);
  if (content.every(isBlank)) return undefined;
  const bytes = content.length > maxLineBytes ? undefined : content;
  return { lineNumber, byteStart: lineStart + start, byteEnd: lineStart + end, bytes };
}

function isBlank(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === CARRIAGE_RETURN;
}

function concat(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1 && pieces[0] !== undefined) return pieces[0];
  const whole = new Uint8Array(length);
  let offset = 0;
  for (const piece of pieces) {
    whole.set(piece, offset);
    offset += piece.length;
  }
  return whole;
}
