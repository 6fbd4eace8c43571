import { PipelineError } from '../errors.ts';
import { classifyFailure, type Failure } from '../failures.ts';
import type {
  AnthropicOutputLine,
  BedrockOutputLine,
  MessagesResponse,
  PlainOutputLine,
} from '../formats/lines.ts';
import { derivedRecordId, type InputFamily, type LineError, type PromptRecord } from '../input/records.ts';

export type { MessagesResponse };

export type RecordOutcome =
  | { readonly status: 'succeeded'; readonly response: MessagesResponse }
  | {
      readonly status: 'errored';
      readonly failure: Pick<Failure, 'code' | 'message' | 'httpStatus' | 'anthropicType'>;
    }
  | { readonly status: 'canceled' }
  | { readonly status: 'expired' };

/** The record an output line speaks of. `modelInput` is echoed in the Bedrock family, as native batch does. */
export interface OutputSubject {
  readonly recordId: string;
  readonly lineNumber: number;
  readonly family: InputFamily;
  readonly modelInput?: unknown;
}

/** The subject of a record's output line; a Bedrock-family line echoes the record's own modelInput. */
export function subjectOf(
  record: Pick<PromptRecord, 'recordId' | 'lineNumber' | 'family' | 'body'>,
): OutputSubject {
  return {
    recordId: record.recordId,
    lineNumber: record.lineNumber,
    family: record.family,
    ...(record.family === 'bedrock' ? { modelInput: record.body } : {}),
  };
}

/** Bedrock-family lines have no place for "canceled" or "expired": they become errors with these codes. */
const NOT_RUN = {
  canceled: {
    errorCode: 499,
    errorType: 'Canceled',
    errorMessage: 'The job was canceled before this record ran.',
  },
  expired: { errorCode: 408, errorType: 'Expired', errorMessage: 'The job expired before this record ran.' },
} as const;

/** One output line (without newline) in the family the record came in. */
export function renderResultLine(subject: OutputSubject, outcome: RecordOutcome): string {
  switch (subject.family) {
    case 'bedrock':
      return JSON.stringify(bedrockLine(subject, outcome));
    case 'anthropic':
      return JSON.stringify({
        custom_id: subject.recordId,
        result: anthropicResult(outcome),
      } satisfies AnthropicOutputLine);
    case 'plain':
      return JSON.stringify(plainLine(subject, outcome));
  }
}

function bedrockLine(subject: OutputSubject, outcome: RecordOutcome): BedrockOutputLine {
  const head = {
    recordId: subject.recordId,
    ...(subject.modelInput === undefined ? {} : { modelInput: subject.modelInput }),
  };
  switch (outcome.status) {
    case 'succeeded':
      return { ...head, modelOutput: outcome.response };
    case 'errored':
      return {
        ...head,
        error: {
          errorCode: outcome.failure.httpStatus,
          errorType: outcome.failure.code,
          errorMessage: outcome.failure.message,
        },
      };
    case 'canceled':
    case 'expired':
      return { ...head, error: NOT_RUN[outcome.status] };
  }
}

function anthropicResult(outcome: RecordOutcome): AnthropicOutputLine['result'] {
  switch (outcome.status) {
    case 'succeeded':
      return { type: 'succeeded', message: outcome.response };
    case 'errored':
      return {
        type: 'errored',
        error: {
          type: 'error',
          error: { type: outcome.failure.anthropicType, message: outcome.failure.message },
        },
      };
    case 'canceled':
    case 'expired':
      return { type: outcome.status };
  }
}

/**
 * The plain family's result: the text people want, with the facts needed to trust it.
 * `{"id", "line", "status": "succeeded", "text", "stop_reason", "usage"}` or
 * `{"id", "line", "status": "errored", "error": {"code", "message"}}` or `{"id", "line", "status": "canceled"}`.
 */
function plainLine(subject: OutputSubject, outcome: RecordOutcome): PlainOutputLine {
  const head = { id: subject.recordId, line: subject.lineNumber };
  switch (outcome.status) {
    case 'succeeded':
      return {
        ...head,
        status: outcome.status,
        text: textOf(outcome.response),
        stop_reason: outcome.response.stop_reason ?? null,
        usage: outcome.response.usage ?? null,
      };
    case 'errored':
      return {
        ...head,
        status: outcome.status,
        error: { code: outcome.failure.code, message: outcome.failure.message },
      };
    case 'canceled':
    case 'expired':
      return { ...head, status: outcome.status };
  }
}

function textOf(response: MessagesResponse): string {
  return response.content
    .filter((block): block is { type: 'text'; text: string } => {
      const candidate = block as { type?: unknown; text?: unknown };
      return candidate.type === 'text' && typeof candidate.text === 'string';
    })
    .map((block) => block.text)
    .join('');
}

/** A line that never became a record is reported through the same failure table as any other error. */
export function lineErrorOutcome(error: LineError): RecordOutcome {
  return { status: 'errored', failure: classifyFailure(new PipelineError(error.code, error.message)) };
}

/**
 * The subject of a line that never became a record. A line too broken to show its family is written in
 * `fallbackFamily`, which the caller takes from the file's other lines.
 */
export function lineErrorSubject(error: LineError, fallbackFamily: InputFamily): OutputSubject {
  return {
    recordId: error.recordId ?? derivedRecordId(error.lineNumber),
    lineNumber: error.lineNumber,
    family: error.family ?? fallbackFamily,
  };
}
