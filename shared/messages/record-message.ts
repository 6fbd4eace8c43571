import { z } from 'zod';
import { PipelineError } from '../errors.ts';

const sourceSchema = z.strictObject({
  bucket: z.string().min(1),
  key: z.string().min(1),
  versionId: z.string().min(1).optional(),
  etag: z.string().min(1).optional(),
  byteStart: z.number().int().nonnegative(),
  byteEnd: z.number().int().positive(),
});

const fields = {
  jobId: z.string().min(1),
  recordId: z.string().min(1),
  lineNumber: z.number().int().positive(),
  /** Where the line is in the pinned input object. */
  source: sourceSchema,
  /** Times the record was sent again to wait for quota; waiting is not a failure and spends no attempt. */
  waits: z.number().int().positive().optional(),
};

/** Version 1: the line by reference only. Still read, so messages in flight across a deploy are not stranded. */
const recordMessageV1 = z.strictObject({ v: z.literal(1), ...fields });

/** Version 2 adds the line itself when it is small, so the worker reads nothing back for it. */
const recordMessageV2 = z.strictObject({ v: z.literal(2), ...fields, line: z.string().min(1).optional() });

const recordMessageSchema = z.discriminatedUnion('v', [recordMessageV1, recordMessageV2]);

/**
 * The SQS message for one record, as written today. A small line rides in the message; a large one (a long
 * document) travels as its byte range in the input object, so the SQS message limit never applies.
 */
export type RecordMessage = z.infer<typeof recordMessageV2>;

export const RECORD_MESSAGE_VERSION = 2;

/**
 * The largest message that carries its line: ten of them fit one SendMessageBatch on a queue that keeps the
 * old 256 KiB limit, and one Lambda event of a full worker batch stays far below its payload limit.
 */
export const INLINE_MESSAGE_BYTES = 24 * 1024;

/** SQS refuses these characters in a message body; a line that holds one travels by reference. */
const OUTSIDE_SQS_CHARACTERS = /[\uFFFE\uFFFF]/;

/** The message body: the line inside when it fits, by reference only otherwise. */
export function recordMessageBody(message: RecordMessage): string {
  const { line, ...byReference } = message;
  if (line !== undefined && !OUTSIDE_SQS_CHARACTERS.test(line)) {
    const inline = JSON.stringify(message);
    if (Buffer.byteLength(inline) <= INLINE_MESSAGE_BYTES) return inline;
  }
  return JSON.stringify(byReference);
}

/** A message body of either version, as the current shape. */
export function parseRecordMessage(body: string): RecordMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new PipelineError('INVALID_MESSAGE', 'A record message is not JSON.', { cause: error });
  }
  return recordMessageOf(value);
}

/** A record message of either version, already out of its JSON (inside a staged record, say), as the current shape. */
export function recordMessageOf(value: unknown): RecordMessage {
  const parsed = recordMessageSchema.safeParse(value);
  if (!parsed.success) {
    throw new PipelineError('INVALID_MESSAGE', `Not a record message: ${z.prettifyError(parsed.error)}`);
  }
  if (parsed.data.source.byteEnd <= parsed.data.source.byteStart) {
    throw new PipelineError('INVALID_MESSAGE', 'A record message has an empty byte range.');
  }
  return { ...parsed.data, v: RECORD_MESSAGE_VERSION };
}
