import { type RawLine, type SplitOptions, splitLines } from './line-splitter.ts';
import { parseLine } from './parse-line.ts';
import type { LineResult, PromptRecord } from './records.ts';

/**
 * Remembers which record ids a file has used. The in-memory one serves a file read in one pass; the
 * pipeline's ledger-backed one makes the check hold across invocations that resume a large file.
 */
export interface RecordIdRegistry {
  /** Claims `recordId` for `lineNumber`; returns the line that claimed it first, or undefined if it was free. */
  claim(recordId: string, lineNumber: number): Promise<number | undefined> | number | undefined;
}

export class InMemoryRecordIdRegistry implements RecordIdRegistry {
  private readonly firstLines = new Map<string, number>();

  claim(recordId: string, lineNumber: number): number | undefined {
    const first = this.firstLines.get(recordId);
    if (first !== undefined && first !== lineNumber) return first;
    this.firstLines.set(recordId, lineNumber);
    return undefined;
  }
}

export interface ReadLine {
  readonly line: RawLine;
  readonly result: LineResult;
}

export interface ReadOptions extends SplitOptions {
  readonly registry: RecordIdRegistry;
}

/** Every non-blank line of a JSONL stream, parsed, with duplicate ids reported against the later line. */
export async function* readRecords(
  chunks: AsyncIterable<Uint8Array>,
  options: ReadOptions,
): AsyncGenerator<ReadLine> {
  for await (const line of splitLines(chunks, options)) {
    const parsed = parseLine(line.bytes, line.lineNumber, options.maxLineBytes);
    yield { line, result: parsed.ok ? await checkUnique(parsed, options.registry) : parsed };
  }
}

async function checkUnique(
  parsed: LineResult & { ok: true },
  registry: RecordIdRegistry,
): Promise<LineResult> {
  // A derived id is unique by construction: no given id can take it.
  if (parsed.record.idDerived) return parsed;
  const firstLine = await registry.claim(comparableId(parsed.record.recordId), parsed.record.lineNumber);
  return firstLine === undefined ? parsed : duplicateIdError(parsed.record, firstLine);
}

/**
 * The form in which ids are compared and claimed: Unicode NFC, so that the same letters written with a
 * combining accent ("cafe" + U+0301) and precomposed ("café") are one id, as a reader takes them.
 */
export function comparableId(recordId: string): string {
  return recordId.normalize('NFC');
}

/** The later of two lines with one id is the error. */
export function duplicateIdError(record: PromptRecord, firstLine: number): LineResult {
  const normalised = [...record.recordId].some((character) => (character.codePointAt(0) ?? 0) > 0x7f)
    ? ' Ids are compared in Unicode NFC form: the same letters with combining or precomposed accents are one id.'
    : '';
  return {
    ok: false,
    error: {
      lineNumber: record.lineNumber,
      recordId: record.recordId,
      family: record.family,
      code: 'DUPLICATE_RECORD_ID',
      message: `Line ${record.lineNumber} repeats record id "${record.recordId}" first used on line ${firstLine}. Ids must be unique within a file; give this line its own id.${normalised}`,
    },
  };
}
