import { z } from 'zod';
import type { LineError, LineErrorCode } from './records.ts';

/**
 * The part of a file's records that may be invalid before its job stops reading: a file mostly of errors is
 * almost always the wrong file or the wrong format, and each of its lines would still be claimed, stored
 * and counted. Half, by default: a file uploaded twice over (every id a duplicate) still runs.
 */
export const DEFAULT_MAX_ERROR_RATE = 0.5;

/** The rate is judged from this many records on: a few bad lines at the top of a small file are not a trend. */
export const ERROR_RATE_FROM_RECORDS = 100;

/** A rate as a fraction (`0.25`) or a percentage (`25%`), from 0 (no invalid line) to 1 (never stop). */
export const errorRateSchema = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const match = /^(\d+(?:\.\d+)?|\.\d+)(%?)$/.exec(text);
    const rate = match === null ? Number.NaN : Number(match[1]) / (match[2] === '%' ? 100 : 1);
    if (!(rate >= 0 && rate <= 1))
      ctx.addIssue({
        code: 'custom',
        message: 'must be a fraction from 0 to 1 or a percentage, e.g. 0.1 or 10%',
      });
    return rate;
  });

/** The invalid lines one reading step met, by error code, with the first line of each. */
export class InvalidLines {
  readonly #byCode = new Map<LineErrorCode, { count: number; firstLine: number }>();

  add(errors: readonly LineError[]): void {
    for (const { code, lineNumber } of errors) {
      const seen = this.#byCode.get(code);
      if (seen === undefined) this.#byCode.set(code, { count: 1, firstLine: lineNumber });
      else seen.count += 1;
    }
  }

  /** The commonest codes, most first: `UNKNOWN_FORMAT x 97 (first at line 2)`. */
  describe(): string {
    return [...this.#byCode.entries()]
      .sort(([, a], [, b]) => b.count - a.count || a.firstLine - b.firstLine)
      .slice(0, 3)
      .map(([code, { count, firstLine }]) => `${code} x ${count} (first at line ${firstLine})`)
      .join(', ');
  }
}

export interface ReadSoFar {
  readonly recordsRead: number;
  readonly invalidLines: number;
  /** The number of the last line read. */
  readonly readLine: number;
}

/**
 * Why reading stops, when more of the records read so far are invalid than the file allows, counted from
 * ERROR_RATE_FROM_RECORDS records on; undefined while the file is within its rate. Names no line's content.
 */
export function errorRateProblem(
  read: ReadSoFar,
  maxErrorRate: number,
  invalid: InvalidLines,
): string | undefined {
  if (read.recordsRead < ERROR_RATE_FROM_RECORDS || read.invalidLines <= maxErrorRate * read.recordsRead)
    return undefined;
  const percent = (rate: number) => `${Math.round(rate * 1000) / 10}%`;
  const commonest = invalid.describe();
  return (
    `Stopped reading at line ${read.readLine}: ${read.invalidLines} of the ${read.recordsRead} records read are invalid ` +
    `(${percent(read.invalidLines / read.recordsRead)}), above the file's maximum error rate of ${percent(maxErrorRate)}. ` +
    (commonest === '' ? '' : `Among them: ${commonest}. `) +
    "Run `bedrock-batch plan <file>` to see each line's problem; " +
    'if so many invalid lines are expected, raise the max-error-rate file option.'
  );
}
