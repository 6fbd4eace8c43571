// Over 250 lines: one check per part of a Messages API body (roles, blocks, sources, sampling, tools,
// thinking), each short; they are one table of rules read top to bottom.
/**
 * The Messages API's documented rules for a request body, checked before anything is spent: roles and their
 * order, content block types and sources, sampling ranges, tools, thinking. The pipeline refuses a line that
 * breaks one (at enqueue, so it never waits in a queue or reserves quota); the Bedrock stand-in refuses the
 * same body with a ValidationException, as Bedrock does after the call has been made.
 */

export interface BodyProblem {
  /** Where, as the API names it: `messages.0.content.1.source.data`. */
  readonly path: string;
  readonly message: string;
  readonly fix?: string;
}

/** The fields of an InvokeModel body for Claude. */
export const MESSAGES_BODY_FIELDS = [
  'anthropic_version',
  'anthropic_beta',
  'max_tokens',
  'messages',
  'system',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'tools',
  'tool_choice',
  'metadata',
  'thinking',
] as const;

const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'];
/** The Messages API's limit for one image, decoded. */
const IMAGE_MAX_BYTES = 5 * 1024 * 1024;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const TOOL_CHOICES = ['auto', 'any', 'tool', 'none'];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The field a person probably meant by `name`, among `known`: the same letters once case, "-" and "_" are
 * set aside (`maxTokens`, `max-tokens` -> `max_tokens`; `anthropic-beta` -> `anthropic_beta`).
 */
export function meantField(name: string, known: readonly string[]): string | undefined {
  const plain = (text: string) => text.toLowerCase().replaceAll(/[-_\s]/g, '');
  return known.find((field) => field !== name && plain(field) === plain(name));
}

/** An unknown field's problem, naming the field meant when there is one. */
export function unknownFieldProblem(path: string, name: string, known: readonly string[]): BodyProblem {
  const meant = meantField(name, known);
  return {
    path: path === '' ? name : `${path}.${name}`,
    message: `unknown field "${name}"`,
    fix:
      meant === undefined
        ? `Remove it; the fields here are ${known.join(', ')}.`
        : `Write "${meant}": "${name}" is not read, so what it says would not be applied.`,
  };
}

type Check = BodyProblem | undefined;

const problem = (path: string, message: string, fix?: string): BodyProblem =>
  fix === undefined ? { path, message } : { path, message, fix };

/**
 * The first rule `body` breaks, or undefined. `extraFields` are fields the caller accepts besides the
 * Messages API's own (the pipeline strips some before the call).
 */
export function messagesBodyProblem(
  body: Readonly<Record<string, unknown>>,
  extraFields: readonly string[] = [],
): BodyProblem | undefined {
  const known: readonly string[] = [...MESSAGES_BODY_FIELDS, ...extraFields];
  for (const name of Object.keys(body)) {
    if (!known.includes(name)) return unknownFieldProblem('', name, MESSAGES_BODY_FIELDS);
  }
  return (
    checkMessages(body.messages) ??
    checkSystem(body.system) ??
    checkSampling(body) ??
    checkTools(body.tools, body.tool_choice) ??
    checkThinking(body.thinking, body.max_tokens)
  );
}

function checkMessages(messages: unknown): Check {
  if (!Array.isArray(messages) || messages.length === 0)
    return problem('messages', 'must be a list of at least one message');
  for (const [index, message] of messages.entries()) {
    const path = `messages.${index}`;
    if (!isObject(message)) return problem(path, 'must be an object with "role" and "content"');
    for (const name of Object.keys(message)) {
      if (name !== 'role' && name !== 'content') return unknownFieldProblem(path, name, ['role', 'content']);
    }
    if (message.role !== 'user' && message.role !== 'assistant')
      return problem(`${path}.role`, `must be "user" or "assistant", not ${JSON.stringify(message.role)}`);
    if (index === 0 && message.role !== 'user')
      return problem(
        `${path}.role`,
        'the first message must use the "user" role',
        'Start the conversation with the user; an assistant message may follow to prefill the answer.',
      );
    const content = checkContent(`${path}.content`, message.content, message.role);
    if (content !== undefined) return content;
  }
  return undefined;
}

function checkContent(path: string, content: unknown, role: 'user' | 'assistant'): Check {
  if (typeof content === 'string') return content === '' ? problem(path, 'must not be empty') : undefined;
  if (!Array.isArray(content) || content.length === 0)
    return problem(path, 'must be a string or a list of at least one content block');
  for (const [index, block] of content.entries()) {
    const found = checkBlock(`${path}.${index}`, block, role);
    if (found !== undefined) return found;
  }
  return undefined;
}

function checkBlock(path: string, block: unknown, role: 'user' | 'assistant'): Check {
  if (!isObject(block) || typeof block.type !== 'string')
    return problem(path, 'must be an object with a "type"');
  switch (block.type) {
    case 'text':
      return typeof block.text === 'string' && block.text !== ''
        ? undefined
        : problem(`${path}.text`, 'a text block needs non-empty "text"');
    case 'image':
      return checkImage(`${path}.source`, block.source);
    case 'document':
      return checkDocument(`${path}.source`, block.source);
    case 'tool_use':
      if (role !== 'assistant') return problem(path, 'tool_use blocks belong in assistant messages');
      if (typeof block.id !== 'string' || block.id === '') return problem(`${path}.id`, 'is required');
      if (typeof block.name !== 'string' || !TOOL_NAME.test(block.name))
        return problem(`${path}.name`, 'must be 1-64 letters, digits, "_" or "-"');
      return isObject(block.input) ? undefined : problem(`${path}.input`, 'must be an object');
    case 'tool_result':
      if (role !== 'user') return problem(path, 'tool_result blocks belong in user messages');
      return typeof block.tool_use_id === 'string' && block.tool_use_id !== ''
        ? undefined
        : problem(`${path}.tool_use_id`, 'is required');
    case 'thinking':
    case 'redacted_thinking':
      return role === 'assistant'
        ? undefined
        : problem(path, `${block.type} blocks belong in assistant messages`);
    default:
      return problem(
        `${path}.type`,
        `unknown content block type "${block.type}"`,
        'Use text, image, document, tool_use, tool_result, thinking or redacted_thinking.',
      );
  }
}

function checkImage(path: string, source: unknown): Check {
  if (!isObject(source) || source.type !== 'base64')
    return problem(path, 'an image source must be {"type": "base64", "media_type": ..., "data": ...}');
  if (typeof source.media_type !== 'string' || !IMAGE_MEDIA_TYPES.includes(source.media_type))
    return problem(
      `${path}.media_type`,
      `${JSON.stringify(source.media_type)} is not an image type Claude reads`,
      `Use one of ${IMAGE_MEDIA_TYPES.join(', ')}.`,
    );
  const data = checkBase64(`${path}.data`, source.data);
  if (data !== undefined) return data;
  const bytes = decodedBytes(source.data as string);
  return bytes > IMAGE_MAX_BYTES
    ? problem(`${path}.data`, `the image is ${bytes} bytes; one image may be at most ${IMAGE_MAX_BYTES}`)
    : undefined;
}

function checkDocument(path: string, source: unknown): Check {
  if (!isObject(source)) return problem(path, 'a document needs a source');
  if (source.type === 'base64') {
    if (source.media_type !== 'application/pdf')
      return problem(`${path}.media_type`, 'a base64 document must be application/pdf');
    return checkBase64(`${path}.data`, source.data);
  }
  if (source.type === 'text') {
    if (source.media_type !== 'text/plain')
      return problem(`${path}.media_type`, 'a text document must be text/plain');
    return typeof source.data === 'string' ? undefined : problem(`${path}.data`, 'must be a string');
  }
  if (source.type === 'content') {
    return Array.isArray(source.content) && source.content.length > 0
      ? undefined
      : problem(`${path}.content`, 'must be a list of at least one content block');
  }
  return problem(`${path}.type`, 'a document source is "base64" (PDF), "text" or "content"');
}

function checkBase64(path: string, data: unknown): Check {
  if (typeof data !== 'string' || data === '') return problem(path, 'must be base64 text');
  return data.length % 4 === 0 && BASE64.test(data)
    ? undefined
    : problem(
        path,
        'is not valid base64',
        'Encode the file with standard base64 (no line breaks, no data: prefix).',
      );
}

function decodedBytes(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return (base64.length / 4) * 3 - padding;
}

function checkSystem(system: unknown): Check {
  if (system === undefined || typeof system === 'string') return undefined;
  if (!Array.isArray(system)) return problem('system', 'must be a string or a list of text blocks');
  for (const [index, block] of system.entries()) {
    if (!isObject(block) || block.type !== 'text' || typeof block.text !== 'string')
      return problem(`system.${index}`, 'must be a text block {"type": "text", "text": ...}');
  }
  return undefined;
}

function checkSampling(body: Readonly<Record<string, unknown>>): Check {
  for (const name of ['temperature', 'top_p'] as const) {
    const value = body[name];
    if (value !== undefined && (typeof value !== 'number' || value < 0 || value > 1))
      return problem(name, `must be a number from 0 to 1, not ${JSON.stringify(value)}`);
  }
  const { top_k: topK, stop_sequences: stops } = body;
  if (topK !== undefined && (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0))
    return problem('top_k', `must be a whole number of 0 or more, not ${JSON.stringify(topK)}`);
  if (
    stops !== undefined &&
    (!Array.isArray(stops) || stops.some((stop) => typeof stop !== 'string' || stop.trim() === ''))
  )
    return problem('stop_sequences', 'must be a list of non-blank strings');
  return undefined;
}

function checkTools(tools: unknown, toolChoice: unknown): Check {
  const names: string[] = [];
  if (tools !== undefined) {
    if (!Array.isArray(tools)) return problem('tools', 'must be a list of tool definitions');
    for (const [index, tool] of tools.entries()) {
      const path = `tools.${index}`;
      if (!isObject(tool)) return problem(path, 'must be an object');
      if (typeof tool.name !== 'string' || !TOOL_NAME.test(tool.name))
        return problem(`${path}.name`, 'must be 1-64 letters, digits, "_" or "-"');
      if (names.includes(tool.name)) return problem(`${path}.name`, `"${tool.name}" is defined twice`);
      names.push(tool.name);
      // Anthropic-defined tools carry a versioned type and no schema; custom tools need one.
      const custom = tool.type === undefined || tool.type === 'custom';
      if (custom && !(isObject(tool.input_schema) && tool.input_schema.type === 'object'))
        return problem(`${path}.input_schema`, 'must be a JSON Schema with "type": "object"');
    }
  }
  if (toolChoice === undefined) return undefined;
  if (!isObject(toolChoice) || typeof toolChoice.type !== 'string' || !TOOL_CHOICES.includes(toolChoice.type))
    return problem('tool_choice.type', `must be one of ${TOOL_CHOICES.join(', ')}`);
  if (toolChoice.type === 'tool' && (typeof toolChoice.name !== 'string' || !names.includes(toolChoice.name)))
    return problem('tool_choice.name', 'must name one of the tools defined in "tools"');
  return undefined;
}

function checkThinking(thinking: unknown, maxTokens: unknown): Check {
  if (thinking === undefined) return undefined;
  if (!isObject(thinking)) return problem('thinking', 'must be {"type": "enabled", "budget_tokens": n}');
  if (thinking.type === 'disabled') return undefined;
  if (thinking.type !== 'enabled') return problem('thinking.type', 'must be "enabled" or "disabled"');
  const budget = thinking.budget_tokens;
  if (typeof budget !== 'number' || !Number.isInteger(budget) || budget < 1024)
    return problem('thinking.budget_tokens', 'must be a whole number of at least 1024');
  if (typeof maxTokens === 'number' && budget >= maxTokens)
    return problem('thinking.budget_tokens', `must be less than max_tokens (${maxTokens})`);
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
