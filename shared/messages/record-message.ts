import { z } from 'zod';
import { PipelineError } from '../errors.ts';

/**
 * The SQS message for one record. It carries a reference, never the prompt: the worker reads the line's
 * byte range from the input object, so a 1M-token document travels as a few hundred bytes and the SQS
 * message limit never applies.
 */
const recordMessageSchema = z.strictObject({
  v: z.literal(1),
  jobId: z.string().min(1),
  recordId: z.string().min(1),
  lineNumber: z.number().int().positive(),
  source: z.strictObject({
    bucket: z.string().min(1),
    key: z.string().min(1),
    versionId: z.string().min(1).optional(),
    etag: z.string().min(1).optional(),
    byteStart: z.number().int().nonnegative(),
    byteEnd: z.number().int().positive(),
  }),
  /** Times the record was sent again to wait for quota; waiting is not a failure and spends no attempt. */
  waits: z.number().int().positive().optional(),
});

export type RecordMessage = z.infer<typeof recordMessageSchema>;

export function parseRecordMessage(body: string): RecordMessage {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new PipelineError('INVALID_MESSAGE', 'A record message is not JSON.', { cause: error });
  }
  const parsed = recordMessageSchema.safeParse(value);
  if (!parsed.success) {
    throw new PipelineError('INVALID_MESSAGE', `Not a record message: ${z.prettifyError(parsed.error)}`);
  }
  if (parsed.data.source.byteEnd <= parsed.data.source.byteStart) {
    throw new PipelineError('INVALID_MESSAGE', 'A record message has an empty byte range.');
  }
  return parsed.data;
}
