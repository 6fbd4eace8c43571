// Over 250 lines: the three input forms' schemas, their examples and the messages that say how to fix a
// line belong to one parser; the Messages API's own rules are in shared/request/messages-rules.ts.
import { z } from 'zod';
import { catalogInUse } from '../catalog/catalog.ts';
import { meantField, messagesBodyProblem } from '../request/messages-rules.ts';
import {
  derivedRecordId,
  type InputFamily,
  type LineError,
  type LineErrorCode,
  type LineResult,
  lineNamedBy,
  type MessagesBody,
} from './records.ts';

const EXAMPLES: Record<InputFamily, string> = {
  bedrock:
    '{"recordId": "r1", "modelInput": {"max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}}',
  anthropic:
    '{"custom_id": "r1", "params": {"model": "claude-opus-4-6", "max_tokens": 256, "messages": [{"role": "user", "content": "Hello"}]}}',
  plain: '{"id": "r1", "prompt": "Hello", "max_tokens": 256}',
};

const FAMILY_NAMES: Record<InputFamily, string> = {
  bedrock: 'Bedrock',
  anthropic: 'Anthropic',
  plain: 'plain',
};
const FAMILY_ARTICLES: Record<InputFamily, string> = { bedrock: 'A', anthropic: 'An', plain: 'A' };

const FAMILY_KEYS: Record<InputFamily, readonly string[]> = {
  bedrock: ['recordId', 'modelInput'],
  anthropic: ['custom_id', 'params'],
  plain: ['id', 'prompt', 'messages'],
};

const recordId = z
  .string()
  .min(1, 'must not be empty')
  .max(256, 'must be at most 256 characters')
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');

const maxTokens = z.number().int('must be a whole number').positive('must be positive');

/** The body's shape; what the Messages API allows inside it is checked by messagesBodyProblem. */
const messagesBody = z.looseObject({
  messages: z.array(z.unknown()),
  max_tokens: maxTokens.optional(),
  anthropic_beta: z.array(z.string().min(1)).optional(),
});

const bedrockLine = z.strictObject({ recordId: recordId.optional(), modelInput: messagesBody });

const anthropicLine = z.strictObject({
  custom_id: recordId.optional(),
  params: messagesBody.extend({ model: z.string().min(1).optional() }),
});

const plainFields = z.strictObject({
  id: z.union([recordId, z.number().int().nonnegative().transform(String)]).optional(),
  model: z.string().min(1).optional(),
  prompt: z.string().min(1, 'must not be empty').optional(),
  messages: messagesBody.shape.messages.optional(),
  system: z.string().optional(),
  max_tokens: maxTokens.optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().positive().optional(),
  stop_sequences: z.array(z.string()).optional(),
});

const plainLine = plainFields.refine(
  (line) => (line.prompt === undefined) !== (line.messages === undefined),
  {
    message: 'give either "prompt" (a string) or "messages" (a Messages API list), not both or neither',
  },
);

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Parses one line's bytes into a record or a structured error. Pure: the same bytes and line number give
 * the same answer, which is what lets a worker re-read a line by reference and agree with the enqueue step.
 * `maxLineBytes` must match the splitter's; a line it dropped arrives as `undefined`.
 */
export function parseLine(
  bytes: Uint8Array | undefined,
  lineNumber: number,
  maxLineBytes: number,
): LineResult {
  const fail = (code: LineErrorCode, message: string, extra: Partial<LineError> = {}): LineResult => ({
    ok: false,
    error: { lineNumber, recordId: undefined, family: undefined, code, message, ...extra },
  });

  if (bytes === undefined || bytes.length > maxLineBytes) {
    return fail(
      'LINE_TOO_LARGE',
      `Line ${lineNumber} is longer than ${maxLineBytes.toLocaleString('en-US')} bytes, the Bedrock request body limit. Split the document or shorten the prompt.`,
    );
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return fail('INVALID_UTF8', `Line ${lineNumber} is not valid UTF-8. Save the file as UTF-8.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return fail(
      'INVALID_JSON',
      `Line ${lineNumber} is not valid JSON (${(error as Error).message}). Each line must be one complete JSON object.`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return fail(
      'NOT_AN_OBJECT',
      `Line ${lineNumber} is ${kind}, not a JSON object. For example: ${EXAMPLES.plain}`,
    );
  }
  const object = value as Record<string, unknown>;
  const families = detectFamilies(object);
  const knownId = idOf(object);
  if (families.length > 1) {
    return fail(
      'AMBIGUOUS_FORMAT',
      `Line ${lineNumber} mixes the ${families.map((family) => FAMILY_NAMES[family]).join(' and ')} forms (${families.map((family) => FAMILY_KEYS[family].filter((key) => key in object).join(', ')).join(' / ')}). Use one form per line.`,
      { recordId: knownId },
    );
  }
  const family = families[0];
  if (family === undefined) {
    return fail(
      'UNKNOWN_FORMAT',
      `Line ${lineNumber} is in none of the accepted forms. Write it as ${EXAMPLES.bedrock}, ${EXAMPLES.anthropic} or ${EXAMPLES.plain}.`,
      { recordId: knownId },
    );
  }
  return parseFamily(family, object, lineNumber, (code, message) =>
    fail(code, message, { recordId: knownId, family }),
  );
}

function detectFamilies(object: Record<string, unknown>): InputFamily[] {
  return (Object.keys(FAMILY_KEYS) as InputFamily[]).filter((family) =>
    FAMILY_KEYS[family].some((key) => Object.hasOwn(object, key)),
  );
}

function idOf(object: Record<string, unknown>): string | undefined {
  const id = object.recordId ?? object.custom_id ?? object.id;
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

function parseFamily(
  family: InputFamily,
  object: Record<string, unknown>,
  lineNumber: number,
  fail: (code: LineErrorCode, message: string) => LineResult,
): LineResult {
  const read = readFamily(family, object);
  if (read instanceof z.ZodError) {
    const issue = read.issues[0];
    const path = issue === undefined ? '' : formatPath(issue.path);
    const idIssue = path === 'recordId' || path === 'custom_id' || path === 'id';
    return fail(
      idIssue ? 'INVALID_RECORD_ID' : 'INVALID_RECORD',
      `Line ${lineNumber}: ${describeIssue(issue, path, family)}. ${FAMILY_ARTICLES[family]} ${FAMILY_NAMES[family]}-form line looks like ${EXAMPLES[family]}`,
    );
  }
  const { id, modelOverride, body } = read;
  const named = id === undefined ? undefined : lineNamedBy(id);
  if (named !== undefined && named !== lineNumber) {
    return fail(
      'INVALID_RECORD_ID',
      `Line ${lineNumber}: the id "${id}" is the one line ${named} gets when it has none; an id of the form line-<number> must name its own line (here line-${lineNumber}), or choose another.`,
    );
  }
  const bodyProblem = messagesBodyProblem(body, catalogInUse().bodyFieldsBedrockRejects);
  if (bodyProblem !== undefined) {
    const where = family === 'bedrock' ? 'modelInput.' : family === 'anthropic' ? 'params.' : '';
    return fail(
      'INVALID_REQUEST',
      `Line ${lineNumber}: "${where}${bodyProblem.path}" ${bodyProblem.message}.${bodyProblem.fix === undefined ? '' : ` ${bodyProblem.fix}`}`,
    );
  }
  return {
    ok: true,
    record: {
      recordId: id ?? derivedRecordId(lineNumber),
      lineNumber,
      family,
      idDerived: id === undefined,
      modelOverride,
      body,
    },
  };
}

/** A line's id, model and Messages API body in its family's shape, or why the shape is wrong. */
function readFamily(
  family: InputFamily,
  object: Record<string, unknown>,
): { id: string | undefined; modelOverride: string | undefined; body: MessagesBody } | z.ZodError {
  switch (family) {
    case 'bedrock': {
      const parsed = bedrockLine.safeParse(object);
      if (!parsed.success) return parsed.error;
      return { id: parsed.data.recordId, modelOverride: undefined, body: object.modelInput as MessagesBody };
    }
    case 'anthropic': {
      const parsed = anthropicLine.safeParse(object);
      if (!parsed.success) return parsed.error;
      const { custom_id, params } = parsed.data;
      return { id: custom_id, modelOverride: params.model, body: object.params as MessagesBody };
    }
    case 'plain': {
      const parsed = plainLine.safeParse(object);
      if (!parsed.success) return parsed.error;
      const { id, model, prompt, messages, ...rest } = parsed.data;
      const conversation = messages ?? [{ role: 'user', content: prompt }];
      return { id, modelOverride: model, body: { ...rest, messages: conversation } };
    }
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, index) =>
      typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`,
    )
    .join('');
}

/** The fields a line of each form may have, to name the one meant by a near miss. */
const LINE_FIELDS: Record<InputFamily, readonly string[]> = {
  bedrock: Object.keys(bedrockLine.shape),
  anthropic: Object.keys(anthropicLine.shape),
  plain: Object.keys(plainFields.shape),
};

function describeIssue(issue: z.core.$ZodIssue | undefined, path: string, family: InputFamily): string {
  if (issue === undefined) return 'the line is invalid';
  if (issue.code === 'unrecognized_keys') {
    const where = path === '' ? '' : ` in "${path}"`;
    const known =
      path === '' ? LINE_FIELDS[family] : /messages\[\d+\]$/.test(path) ? ['role', 'content'] : [];
    const meant = issue.keys
      .map((key) => [key, meantField(key, known)] as const)
      .filter(([, field]) => field !== undefined)
      .map(([key, field]) => ` ("${key}" is not read: write "${field}")`)
      .join('');
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}${where}${meant}`;
  }
  // zod leaves the input out of its issues; its message is the only sign that the field was absent.
  if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined'))
    return `"${path}" is missing`;
  const subject = path === '' ? 'the line' : `"${path}"`;
  return `${subject} ${issue.message.replace(/^Invalid (input|option): /, 'is invalid: ')}`;
}
