import { describe, expect, it } from 'vitest';
import { estimateInputTokens } from '../../shared/request/token-estimate.ts';
import { messagesBody, readFixture } from '../support/factories.ts';

describe('estimateInputTokens', () => {
  it('brackets plain English text between 1 token per 10 bytes and 1 per 3 bytes, plus message overhead', () => {
    // Prepare
    const text = 'The batch finished without errors. '.repeat(300); // 10,500 bytes, about 2,400 real tokens

    // Act
    const estimate = estimateInputTokens(
      messagesBody({ system: 'Be brief.', messages: [{ role: 'user', content: text }] }),
    );

    // Assess
    expect(estimate.lower).toBe(Math.floor((text.length + 9) / 10));
    expect(estimate.upper).toBe(Math.ceil((text.length + 9) / 3) + 8);
    expect(estimate.lower).toBeLessThan(2_400);
    expect(estimate.upper).toBeGreaterThan(2_400);
  });

  it('counts UTF-8 bytes, so non-Latin scripts get at least one token per character', () => {
    // Act
    const estimate = estimateInputTokens(
      messagesBody({ messages: [{ role: 'user', content: '日本語'.repeat(100) }] }),
    );

    // Assess
    expect(estimate.upper).toBeGreaterThanOrEqual(300);
  });

  it('counts an image as at most 1,600 tokens above and nothing below, whatever its encoded size', () => {
    // Prepare
    const image = {
      type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: 'A'.repeat(3_000_000) },
    };

    // Act
    const estimate = estimateInputTokens(messagesBody({ messages: [{ role: 'user', content: [image] }] }));

    // Assess
    expect(estimate).toEqual({ lower: 0, upper: 1_600 + 8 });
  });

  it('counts a PDF by its decoded size above and nothing below', () => {
    // Prepare
    const pdf = {
      type: 'document',
      source: { type: 'base64', media_type: 'application/pdf', data: 'A'.repeat(4_000) },
    };

    // Act
    const estimate = estimateInputTokens(messagesBody({ messages: [{ role: 'user', content: [pdf] }] }));

    // Assess
    expect(estimate).toEqual({ lower: 0, upper: 1_000 + 8 });
  });

  it('counts tool definitions, tool results and tool calls as text', () => {
    // Prepare
    const tools = [{ name: 'lookup', description: 'x'.repeat(900), input_schema: { type: 'object' } }];
    const messages = [
      { role: 'user', content: 'Find it' },
      {
        role: 'assistant',
        content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: { q: 'y'.repeat(300) } }],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'z'.repeat(3_000) }] },
        ],
      },
    ];

    // Act
    const withTools = estimateInputTokens(messagesBody({ tools, messages }));
    const without = estimateInputTokens(messagesBody({ messages }));

    // Assess
    expect(withTools.upper - without.upper).toBeGreaterThan(300 + 500);
    expect(without.lower).toBeGreaterThanOrEqual(330);
  });

  it('puts the long-document sample above the 200K window by the upper bound only', () => {
    // Prepare
    const line = JSON.parse(readFixture('prompts/long-document.jsonl').toString('utf8'));

    // Act
    const estimate = estimateInputTokens(line.modelInput);

    // Assess
    expect(estimate.upper).toBeGreaterThan(200_000);
    expect(estimate.lower).toBeLessThan(200_000);
  });
});
