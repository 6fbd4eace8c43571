/**
 * Request bodies Bedrock refuses with a ValidationException, as changes to a valid body, with what the refusal
 * says. The pipeline must refuse each before it spends anything, and the stand-in must refuse each as Bedrock
 * does: the same table drives both tests.
 */
const user = (content: unknown) => ({ role: 'user', content });
const assistant = (content: unknown) => ({ role: 'assistant', content });
const image = (source: Record<string, unknown>) => user([{ type: 'image', source }]);
const tool = (extra: Record<string, unknown> = {}) => ({
  name: 'lookup',
  input_schema: { type: 'object', properties: {} },
  ...extra,
});

export const BODIES_BEDROCK_REFUSES: ReadonlyArray<readonly [string, Record<string, unknown>, RegExp]> = [
  ['a temperature of 5', { temperature: 5 }, /temperature.* must be a number from 0 to 1, not 5/],
  ['a negative top_p', { top_p: -0.1 }, /top_p.* must be a number from 0 to 1, not -0\.1/],
  ['a fractional top_k', { top_k: 2.5 }, /top_k.* must be a whole number of 0 or more, not 2\.5/],
  [
    'a blank stop sequence',
    { stop_sequences: [' '] },
    /stop_sequences.* must be a list of non-blank strings/,
  ],
  [
    'a conversation that starts with the assistant',
    { messages: [assistant('Sure.'), user('Go on.')] },
    /messages\.0\.role.* the first message must use the "user" role/,
  ],
  [
    'a system role in messages',
    { messages: [{ role: 'system', content: 'x' }] },
    /role.* must be "user" or "assistant"/,
  ],
  [
    'an empty list of content blocks',
    { messages: [user([])] },
    /content.* must be a string or a list of at least one content block/,
  ],
  [
    'a text block without text',
    { messages: [user([{ type: 'text', text: '' }])] },
    /text.* a text block needs non-empty "text"/,
  ],
  [
    'an unknown block type',
    { messages: [user([{ type: 'video' }])] },
    /type.* unknown content block type "video"/,
  ],
  [
    'an image with broken base64',
    { messages: [image({ type: 'base64', media_type: 'image/png', data: 'not base64!' })] },
    /source\.data.* is not valid base64/,
  ],
  [
    'an image of a type Claude does not read',
    { messages: [image({ type: 'base64', media_type: 'image/bmp', data: 'AAAA' })] },
    /media_type.* "image\/bmp" is not an image type Claude reads/,
  ],
  [
    'an image by URL',
    { messages: [image({ type: 'url', url: 'https://example.com/a.png' })] },
    /source.* an image source must be \{"type": "base64"/,
  ],
  [
    'a base64 document that is not a PDF',
    {
      messages: [
        user([{ type: 'document', source: { type: 'base64', media_type: 'text/html', data: 'AAAA' } }]),
      ],
    },
    /media_type.* a base64 document must be application\/pdf/,
  ],
  [
    'a tool_use block in a user message',
    { messages: [user([{ type: 'tool_use', id: 't1', name: 'lookup', input: {} }])] },
    /content\.0.* tool_use blocks belong in assistant messages/,
  ],
  [
    'a tool_result block in an assistant message',
    { messages: [user('Hi'), assistant([{ type: 'tool_result', tool_use_id: 't1' }])] },
    /content\.0.* tool_result blocks belong in user messages/,
  ],
  [
    'a tool without an input schema',
    { tools: [{ name: 'lookup' }] },
    /input_schema.* must be a JSON Schema with "type": "object"/,
  ],
  [
    'a tool name with a space',
    { tools: [tool({ name: 'look up' })] },
    /tools\.0\.name.* must be 1-64 letters, digits/,
  ],
  ['a tool defined twice', { tools: [tool(), tool()] }, /tools\.1\.name.* "lookup" is defined twice/],
  [
    'a tool_choice naming no defined tool',
    { tools: [tool()], tool_choice: { type: 'tool', name: 'search' } },
    /tool_choice\.name.* must name one of the tools defined in "tools"/,
  ],
  [
    'a thinking budget under 1024',
    { max_tokens: 4_000, thinking: { type: 'enabled', budget_tokens: 500 } },
    /thinking\.budget_tokens.* must be a whole number of at least 1024/,
  ],
  [
    'a thinking budget not under max_tokens',
    { max_tokens: 2_000, thinking: { type: 'enabled', budget_tokens: 2_000 } },
    /thinking\.budget_tokens.* must be less than max_tokens \(2000\)/,
  ],
  [
    'a system prompt that is an object',
    { system: { text: 'Be brief.' } },
    /system.* must be a string or a list of text blocks/,
  ],
  ['"anthropic-beta" for anthropic_beta', { 'anthropic-beta': ['context-1m-2025-08-07'] }, /anthropic-beta/],
  ['"anthropicBeta" for anthropic_beta', { anthropicBeta: ['context-1m-2025-08-07'] }, /anthropicBeta/],
  ['"maxTokens" for max_tokens', { maxTokens: 100 }, /maxTokens/],
  ['an unknown field', { temperature_scale: 2 }, /temperature_scale/],
];
