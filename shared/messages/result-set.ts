import { z } from 'zod';
import { serviceTiers } from '../contract/service-tiers.ts';
import type { RecordTiming, StoredResult } from '../core/model.ts';
import { PipelineError } from '../errors.ts';
import { ANTHROPIC_ERROR_TYPES } from '../failures.ts';
import { INPUT_FAMILIES } from '../input/records.ts';

/**
 * A result set: the results of records finished together (a worker's batch, a chunk of error records, a
 * batch job's part), one JSON line each, in one S3 object the ledger points each counted record to. One
 * write per batch instead of one per record, and the finalizer reads tens of objects for a job of thousands.
 */

const tokens = z.number().int().nonnegative();

const completionSchema = z.object({
  lineNumber: z.number().int().positive(),
  status: z.enum(['succeeded', 'errored', 'canceled', 'expired']),
  family: z.enum(INPUT_FAMILIES).optional(),
  inputTokens: tokens,
  outputTokens: tokens,
  cacheCreationInputTokens: tokens,
  cacheReadInputTokens: tokens,
  costNanoUsd: z.number().int(),
  /** Absent in results stored one per object before the uncached cost was kept: it is their cost then. */
  uncachedCostNanoUsd: z.number().int().optional(),
  /** Calls of the record that may have been billed with no usage counted (absent when none). */
  uncounted: z
    .object({ unanswered: tokens, abandoned: tokens, costCapNanoUsd: z.number().int().nonnegative() })
    .optional(),
  pool: z.string().exactOptional(),
  unpriced: z.boolean().exactOptional(),
  servedTier: z.enum(serviceTiers).exactOptional(),
  downgraded: z.boolean().exactOptional(),
});

const outcomeSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('succeeded'),
    response: z.looseObject({
      content: z.array(z.unknown()),
      stop_reason: z.string().nullable().optional(),
      usage: z.unknown().optional(),
    }),
  }),
  z.object({
    status: z.literal('errored'),
    failure: z.object({
      code: z.string(),
      message: z.string(),
      httpStatus: z.number().int(),
      anthropicType: z.enum(ANTHROPIC_ERROR_TYPES),
    }),
  }),
  z.object({ status: z.literal('canceled') }),
  z.object({ status: z.literal('expired') }),
]);

/** What a result's output line names: its record, line, input form and (Bedrock form) its model input. */
export const resultSubjectSchema = z.object({
  recordId: z.string(),
  lineNumber: z.number().int().positive(),
  family: z.enum(INPUT_FAMILIES).optional(),
  modelInput: z.unknown().optional(),
});

const storedResultFields = {
  subject: resultSubjectSchema,
  outcome: outcomeSchema,
  completion: completionSchema,
  timing: z
    .object({
      finishedAt: z.string(),
      attempts: z.number().int().nonnegative(),
      modelId: z.string().optional(),
      region: z.string().optional(),
      latencyMs: z.number().nonnegative().optional(),
      lane: z.literal('batch').optional(),
    })
    .optional(),
};

/** Version 1 of a result set's line: one record's result. */
const resultLineV1 = z.object({ v: z.literal(1), ...storedResultFields });

/** A result stored one per object, as versions before result sets did: still read for jobs they counted. */
const legacyResult = z.object(storedResultFields);

export const RESULT_SET_VERSION = 1;

/** The body of a result set object. */
export function resultSetBody(results: readonly StoredResult[]): string {
  return results.map((result) => `${JSON.stringify({ v: RESULT_SET_VERSION, ...result })}\n`).join('');
}

/** The results of a result set object, each line checked. */
export function parseResultSet(bytes: Uint8Array, key: string): StoredResult[] {
  return Buffer.from(bytes)
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line, index) => toStoredResult(parsed(resultLineV1, line, `${key} line ${index + 1}`)));
}

/** A result stored on its own by an earlier version. */
export function parseLegacyResult(bytes: Uint8Array, key: string): StoredResult {
  return toStoredResult(parsed(legacyResult, Buffer.from(bytes).toString('utf8'), key));
}

function parsed<Schema extends z.ZodType>(schema: Schema, text: string, where: string): z.infer<Schema> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PipelineError('INVALID_RESULT', `The stored result ${where} is not JSON.`, { cause: error });
  }
  const result = schema.safeParse(value);
  if (!result.success)
    throw new PipelineError('INVALID_RESULT', `The stored result ${where}: ${z.prettifyError(result.error)}`);
  return result.data;
}

function toStoredResult(value: z.infer<typeof legacyResult>): StoredResult {
  const { subject, outcome, completion, timing } = value;
  return {
    subject: { ...subject, family: subject.family },
    outcome,
    completion: {
      ...completion,
      family: completion.family,
      uncachedCostNanoUsd: completion.uncachedCostNanoUsd ?? completion.costNanoUsd,
    },
    ...(timing === undefined ? {} : { timing: timingOf(timing) }),
  };
}

function timingOf(timing: NonNullable<z.infer<typeof legacyResult>['timing']>): RecordTiming {
  const { finishedAt, attempts, modelId, region, latencyMs, lane } = timing;
  return {
    finishedAt,
    attempts,
    ...(modelId === undefined ? {} : { modelId }),
    ...(region === undefined ? {} : { region }),
    ...(latencyMs === undefined ? {} : { latencyMs }),
    ...(lane === undefined ? {} : { lane }),
  };
}
