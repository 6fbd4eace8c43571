import { describe, expect, it } from 'vitest';
import type { InputLine } from '../../shared/formats/lines.ts';
import { parseLine } from '../../shared/input/parse-line.ts';
import type { LineResult } from '../../shared/input/records.ts';
import { bytes } from '../support/factories.ts';

const LIMIT = 25_000_000;
const parse = (text: string, lineNumber = 7): LineResult => parseLine(bytes(text), lineNumber, LIMIT);
const hello = [{ role: 'user' as const, content: 'Hello' }];

function recordOf(result: LineResult) {
  if (!result.ok) throw new Error(`expected a record, got ${result.error.code}: ${result.error.message}`);
  return result.record;
}

function errorOf(result: LineResult) {
  if (result.ok) throw new Error(`expected an error, got record ${result.record.recordId}`);
  return result.error;
}

describe("the package's input line types", () => {
  it.each<[string, InputLine]>([
    ['Bedrock', { recordId: 'r-1', modelInput: { max_tokens: 10, messages: hello, anthropic_beta: [] } }],
    [
      'Anthropic',
      { custom_id: 'c-1', params: { model: 'claude-opus-4-6', max_tokens: 10, messages: hello } },
    ],
    [
      'plain, every field',
      {
        id: 'p-1',
        model: 'haiku-4.5',
        prompt: 'Hello',
        system: 'Be brief.',
        max_tokens: 10,
        temperature: 0.5,
        top_p: 0.9,
        top_k: 5,
        stop_sequences: ['END'],
      },
    ],
    ['plain, messages', { messages: hello }],
  ])('describe lines the pipeline takes (%s)', (_form, line) => {
    expect(parse(JSON.stringify(line)).ok).toBe(true);
  });
});

describe('parseLine', () => {
  describe.each([
    {
      form: 'Bedrock batch',
      line: { recordId: 'r-1', modelInput: { max_tokens: 10, messages: hello, temperature: 0.5 } },
      expected: {
        recordId: 'r-1',
        family: 'bedrock',
        modelOverride: undefined,
        body: { max_tokens: 10, messages: hello, temperature: 0.5 },
      },
    },
    {
      form: 'Anthropic Message Batches',
      line: { custom_id: 'c-1', params: { model: 'claude-opus-4-6', max_tokens: 10, messages: hello } },
      expected: {
        recordId: 'c-1',
        family: 'anthropic',
        modelOverride: 'claude-opus-4-6',
        body: { model: 'claude-opus-4-6', max_tokens: 10, messages: hello },
      },
    },
    {
      form: 'plain with prompt and system',
      line: { id: 'p-1', prompt: 'Hello', system: 'Be brief.', max_tokens: 10, model: 'haiku-4.5' },
      expected: {
        recordId: 'p-1',
        family: 'plain',
        modelOverride: 'haiku-4.5',
        body: { system: 'Be brief.', max_tokens: 10, messages: hello },
      },
    },
    {
      form: 'plain with messages and a numeric id',
      line: { id: 42, messages: hello, temperature: 0 },
      expected: {
        recordId: '42',
        family: 'plain',
        modelOverride: undefined,
        body: { temperature: 0, messages: hello },
      },
    },
    {
      form: 'content blocks',
      line: {
        recordId: 'b',
        modelInput: {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'Hi' },
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
              ],
            },
          ],
        },
      },
      expected: {
        recordId: 'b',
        family: 'bedrock',
        modelOverride: undefined,
        body: {
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'Hi' },
                { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
              ],
            },
          ],
        },
      },
    },
  ])('a $form line', ({ line, expected }) => {
    it('becomes a record with the body as written', () => {
      // Act
      const record = recordOf(parse(JSON.stringify(line)));

      // Assess
      expect(record).toEqual({ ...expected, lineNumber: 7, idDerived: false });
    });
  });

  describe.each([
    ['Bedrock', { modelInput: { messages: hello } }],
    ['Anthropic', { params: { max_tokens: 5, messages: hello } }],
    ['plain', { prompt: 'Hello' }],
  ])('a %s line without an id', (_form, line) => {
    it('gets a stable id from its line number', () => {
      // Act
      const first = recordOf(parse(JSON.stringify(line), 12));
      const again = recordOf(parse(JSON.stringify(line), 12));

      // Assess
      expect(first.recordId).toBe('line-12');
      expect(first.idDerived).toBe(true);
      expect(again.recordId).toBe(first.recordId);
    });
  });

  describe.each([
    [
      'not UTF-8',
      new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
      'INVALID_UTF8',
      /Save the file as UTF-8/,
    ],
    [
      'not JSON',
      bytes('{"id": "x", "prompt": "unterminated}'),
      'INVALID_JSON',
      /Line 7 is not valid JSON \(.+\)\. Each line must be one complete JSON object/,
    ],
    ['a JSON array', bytes('["a"]'), 'NOT_AN_OBJECT', /is an array, not a JSON object/],
    ['a JSON string', bytes('"hello"'), 'NOT_AN_OBJECT', /is a string/],
    ['JSON null', bytes('null'), 'NOT_AN_OBJECT', /is null/],
    [
      'in no known form',
      bytes('{"question": "What?"}'),
      'UNKNOWN_FORMAT',
      /none of the accepted forms.*"recordId".*"custom_id".*"prompt"/,
    ],
    [
      'in two forms at once',
      bytes('{"recordId": "a", "prompt": "Hi"}'),
      'AMBIGUOUS_FORMAT',
      /mixes the Bedrock and plain forms \(recordId \/ prompt\)/,
    ],
    [
      'missing modelInput',
      bytes('{"recordId": "a"}'),
      'INVALID_RECORD',
      /"modelInput" is missing\. A Bedrock-form line looks like/,
    ],
    [
      'without messages',
      bytes('{"custom_id": "a", "params": {"max_tokens": 5}}'),
      'INVALID_RECORD',
      /"params\.messages" is missing\. An Anthropic-form line/,
    ],
    [
      'with empty messages',
      bytes('{"recordId": "a", "modelInput": {"messages": []}}'),
      'INVALID_REQUEST',
      /"modelInput.messages" must be a list of at least one message/,
    ],
    [
      'with a bad role',
      bytes('{"id": "a", "messages": [{"role": "system", "content": "x"}]}'),
      'INVALID_REQUEST',
      /"messages\.0\.role" must be "user" or "assistant", not "system"/,
    ],
    [
      'with a non-integer max_tokens',
      bytes('{"id": "a", "prompt": "x", "max_tokens": 1.5}'),
      'INVALID_RECORD',
      /"max_tokens" must be a whole number/,
    ],
    [
      'with a typo in a plain field',
      bytes('{"id": "a", "promt": "x"}'),
      'INVALID_RECORD',
      /unknown field "promt"\. A plain-form line/,
    ],
    [
      'with both prompt and messages',
      bytes('{"id": "a", "prompt": "x", "messages": [{"role": "user", "content": "y"}]}'),
      'INVALID_RECORD',
      /either "prompt".*or "messages"/,
    ],
    [
      'with an extra Bedrock top-level field',
      bytes(
        '{"recordId": "a", "modelInput": {"messages": [{"role": "user", "content": "x"}]}, "model": "x"}',
      ),
      'INVALID_RECORD',
      /model/,
    ],
    [
      'with an empty id',
      bytes('{"recordId": "", "modelInput": {"messages": [{"role": "user", "content": "x"}]}}'),
      'INVALID_RECORD_ID',
      /"recordId" must not be empty/,
    ],
    [
      'with a control character in the id',
      bytes('{"custom_id": "a\\u0007", "params": {"messages": [{"role": "user", "content": "x"}]}}'),
      'INVALID_RECORD_ID',
      /control characters/,
    ],
  ])('a line %s', (_case, lineBytes, code, message) => {
    it(`is refused as ${code} with a message that says how to fix it`, () => {
      // Act
      const error = errorOf(parseLine(lineBytes, 7, LIMIT));

      // Assess
      expect(error.code).toBe(code);
      expect(error.lineNumber).toBe(7);
      expect(error.message).toMatch(message);
    });
  });

  it('keeps the record id of an invalid line when it can be read', () => {
    // Act
    const error = errorOf(parse('{"custom_id": "keep-me", "params": {"max_tokens": 5}}'));

    // Assess
    expect(error).toMatchObject({ recordId: 'keep-me', family: 'anthropic' });
  });

  it('reports a line the splitter dropped for size, and one over the limit, as LINE_TOO_LARGE', () => {
    // Act
    const dropped = errorOf(parseLine(undefined, 3, LIMIT));
    const over = errorOf(parseLine(bytes('{"prompt": "0123456789"}'), 4, 10));

    // Assess
    expect(dropped.code).toBe('LINE_TOO_LARGE');
    expect(dropped.message).toMatch(/longer than 25,000,000 bytes/);
    expect(over.code).toBe('LINE_TOO_LARGE');
  });
});
