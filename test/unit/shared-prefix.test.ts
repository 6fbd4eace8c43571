import { describe, expect, it } from 'vitest';
import { findSharedPrefixes, leadingPrefixes } from '../../shared/caching/shared-prefix.ts';
import { parseLine } from '../../shared/input/parse-line.ts';
import type { MessagesBody } from '../../shared/input/records.ts';

const OPUS = 'global.anthropic.claude-opus-4-6-v1';
const HAIKU = 'global.anthropic.claude-haiku-4-5-20251001-v1:0';
/** About 6,000 tokens of instruction: over every model's minimum. */
const POLICY = `Classify the ticket under the refund policy. ${'Rule: refunds within 30 days of purchase. '.repeat(560)}`;
const minimum = () => 4_096;

const question = (index: number) => `Ticket ${index}: the export stopped after the upgrade. Category?`;
const body = (fields: Partial<MessagesBody>, index: number): MessagesBody => ({
  max_tokens: 64,
  messages: [{ role: 'user', content: question(index) }],
  ...fields,
});
const sampleOf = (count: number, make: (index: number) => MessagesBody, modelId = OPUS) =>
  Array.from({ length: count }, (_, index) => ({ modelId, body: make(index) }));

describe('finding the prefix a file shares', () => {
  it.each([
    ['a shared system prompt (a string)', (index: number) => body({ system: POLICY }, index), 1],
    [
      'a shared system prompt in blocks, then a shared example block',
      (index: number) =>
        body(
          {
            system: [
              { type: 'text', text: POLICY },
              { type: 'text', text: 'Answer with one word.' },
            ],
          },
          index,
        ),
      2,
    ],
    [
      'a shared document block before each question',
      (index: number) =>
        body(
          {
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'document', source: { type: 'text', media_type: 'text/plain', data: POLICY } },
                  { type: 'text', text: question(index) },
                ],
              },
            ],
          },
          index,
        ),
      1,
    ],
  ])('finds %s', (_case, make, blocks) => {
    // Act
    const [shared, ...others] = findSharedPrefixes(sampleOf(50, make), minimum);

    // Assess
    expect(others).toEqual([]);
    expect(shared).toMatchObject({ modelId: OPUS, blocks, records: 50 });
    expect(shared?.tokens).toBeGreaterThanOrEqual(Math.ceil(Buffer.byteLength(POLICY) / 4));
  });

  it('finds the same prefix in all three input forms', () => {
    // Prepare: one policy, one question each, as plain, Anthropic and Bedrock lines.
    const lines = [
      { id: 'a', system: POLICY, prompt: question(1) },
      {
        custom_id: 'b',
        params: { max_tokens: 64, system: POLICY, messages: [{ role: 'user', content: question(2) }] },
      },
      {
        recordId: 'c',
        modelInput: {
          anthropic_version: 'bedrock-2023-05-31',
          max_tokens: 64,
          system: POLICY,
          messages: [{ role: 'user', content: question(3) }],
        },
      },
    ];
    const bodies = lines.map((line, index) => {
      const parsed = parseLine(new TextEncoder().encode(JSON.stringify(line)), index + 1, 25_000_000);
      if (!parsed.ok) throw new Error(parsed.error.message);
      return { modelId: OPUS, body: parsed.record.body };
    });

    // Act
    const shared = findSharedPrefixes(bodies, minimum);

    // Assess
    expect(shared).toEqual([expect.objectContaining({ blocks: 1, records: 3 })]);
  });

  it("keeps the user's own breakpoints out of the content and counts them", () => {
    // Prepare
    const marked = body(
      { system: [{ type: 'text', text: POLICY, cache_control: { type: 'ephemeral' } }] },
      1,
    );
    const plain = body({ system: [{ type: 'text', text: POLICY }] }, 2);

    // Act
    const [withBreakpoint, without] = [leadingPrefixes(marked), leadingPrefixes(plain)];

    // Assess
    expect(withBreakpoint.prefixes[0]?.fingerprint).toBe(without.prefixes[0]?.fingerprint);
    expect([withBreakpoint.userBreakpoints, without.userBreakpoints]).toEqual([1, 0]);
  });

  it.each([
    [
      'a shared prefix under the model minimum',
      sampleOf(50, (index) => body({ system: 'Be brief.' }, index)),
    ],
    ['a long prefix only one record has', sampleOf(1, (index) => body({ system: POLICY }, index))],
    ['no shared prefix at all', sampleOf(50, (index) => body({ system: `${POLICY} ${index}` }, index))],
  ])('finds nothing in %s', (_case, sample) => {
    expect(findSharedPrefixes(sample, minimum)).toEqual([]);
  });

  it('finds a prefix per model when records name different models', () => {
    // Prepare
    const sample = [
      ...sampleOf(10, (index) => body({ system: POLICY }, index), OPUS),
      ...sampleOf(10, (index) => body({ system: `${POLICY} For Haiku.` }, index), HAIKU),
    ];

    // Act
    const shared = findSharedPrefixes(sample, minimum);

    // Assess
    expect(shared.map((prefix) => [prefix.modelId, prefix.records])).toEqual([
      [OPUS, 10],
      [HAIKU, 10],
    ]);
    expect(shared[0]?.fingerprint).not.toBe(shared[1]?.fingerprint);
  });
});
