/** The three input conventions; each record's results are written back in the family it came in. */
export const INPUT_FAMILIES = ['bedrock', 'anthropic', 'plain'] as const;
export type InputFamily = (typeof INPUT_FAMILIES)[number];

/** A Messages API request body as the user wrote it (fields we do not know pass through to Bedrock). */
export interface MessagesBody {
  readonly messages: readonly unknown[];
  readonly max_tokens?: number | undefined;
  readonly system?: unknown;
  readonly anthropic_beta?: readonly string[] | undefined;
  readonly [field: string]: unknown;
}

/** One valid input line, whatever its family. */
export interface PromptRecord {
  readonly recordId: string;
  readonly lineNumber: number;
  readonly family: InputFamily;
  /** True when the line had no id and `recordId` was derived from its line number. */
  readonly idDerived: boolean;
  /** A model named by the line itself (Anthropic `params.model`, plain `model`), over the job's model. */
  readonly modelOverride: string | undefined;
  readonly body: MessagesBody;
}

export type LineErrorCode =
  | 'INVALID_UTF8'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'LINE_TOO_LARGE'
  | 'UNKNOWN_FORMAT'
  | 'AMBIGUOUS_FORMAT'
  | 'INVALID_RECORD'
  | 'INVALID_REQUEST'
  | 'INVALID_RECORD_ID'
  | 'DUPLICATE_RECORD_ID';

/** Why a line is not a record: where it is, which record if we know, and a message that says how to fix it. */
export interface LineError {
  readonly lineNumber: number;
  readonly recordId: string | undefined;
  readonly family: InputFamily | undefined;
  readonly code: LineErrorCode;
  readonly message: string;
}

export type LineResult =
  | { readonly ok: true; readonly record: PromptRecord }
  | { readonly ok: false; readonly error: LineError };

/**
 * The id a line without one gets: stable across re-reads and resumed invocations. No given id can take it:
 * a given id of this form must name its own line (lineNamedBy).
 */
export function derivedRecordId(lineNumber: number): string {
  return `line-${lineNumber}`;
}

/** The line an id of the derived form names (`line-7` -> 7); undefined for any other id. */
export function lineNamedBy(recordId: string): number | undefined {
  const match = /^line-([1-9]\d*)$/.exec(recordId);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}
