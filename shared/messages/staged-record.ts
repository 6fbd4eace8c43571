import { z } from 'zod';
import type { StoredResult } from '../core/model.ts';
import { PipelineError } from '../errors.ts';
import { type RecordMessage, recordMessageOf } from './record-message.ts';
import { resultSubjectSchema } from './result-set.ts';

/**
 * A record staged in a batch part, one JSON line each beside the part's Bedrock batch input: the message that
 * runs it on demand (a record message of any version in flight) and what its output line names. Written when
 * a file is read into the batch lane, read when the part's batch job is collected, perhaps a deploy later.
 */
export interface StagedRecord {
  readonly message: RecordMessage;
  readonly subject: StoredResult['subject'];
}

export const STAGED_RECORD_VERSION = 1;

/** Version 1; lines staged before it was written carry no `v`, in the same shape. */
const stagedRecordV1 = z.object({
  v: z.literal(STAGED_RECORD_VERSION).optional(),
  message: z.unknown(),
  subject: resultSubjectSchema,
});

/** A staged record's line (without its newline). */
export function stagedRecordLine({ message, subject }: StagedRecord): string {
  return JSON.stringify({ v: STAGED_RECORD_VERSION, message, subject });
}

/** A staged record's line, checked: `where` names it in the error. */
export function parseStagedRecord(line: string, where: string): StagedRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new PipelineError('INVALID_STAGED_RECORD', `The staged record ${where} is not JSON.`, {
      cause: error,
    });
  }
  const parsed = stagedRecordV1.safeParse(value);
  if (!parsed.success)
    throw new PipelineError(
      'INVALID_STAGED_RECORD',
      `The staged record ${where}: ${z.prettifyError(parsed.error)}`,
    );
  const { message, subject } = parsed.data;
  return { message: recordMessageOf(message), subject: { ...subject, family: subject.family } };
}
