import { describe, expect, it } from 'vitest';
import { cacheBreakpointProblem, withSharedPrefixBreakpoint } from '../../shared/caching/breakpoint.ts';
import { leadingPrefixes } from '../../shared/caching/shared-prefix.ts';
import type { MessagesBody } from '../../shared/input/records.ts';

const POLICY = 'Classify under the refund policy. '.repeat(200);
const ask = (text: string) => [{ role: 'user', content: text }];
/** The shared prefix of `body` at `blocks` leading blocks, as the enqueue step would have found it. */
const prefixOf = (body: MessagesBody, blocks: number) => ({
  blocks,
  fingerprint: leadingPrefixes(body).prefixes[blocks - 1]?.fingerprint ?? '',
});
const ephemeral = { type: 'ephemeral' };

describe('a breakpoint at the end of the shared prefix', () => {
  it('turns a string system prompt into one marked text block', () => {
    // Prepare
    const body = { max_tokens: 64, system: POLICY, messages: ask('Ticket 1?') };

    // Act
    const marked = withSharedPrefixBreakpoint(body, prefixOf(body, 1));

    // Assess
    expect(marked).toEqual({
      body: { ...body, system: [{ type: 'text', text: POLICY, cache_control: ephemeral }] },
      ttl: '5m',
    });
  });

  it('marks a shared document in the first message and leaves the question as it is', () => {
    // Prepare
    const document = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: POLICY } };
    const body = {
      max_tokens: 64,
      messages: [{ role: 'user', content: [document, { type: 'text', text: 'Clause 4?' }] }],
    };

    // Act
    const marked = withSharedPrefixBreakpoint(body, { ...prefixOf(body, 1), ttl: '1h' });

    // Assess
    expect(marked?.ttl).toBe('1h');
    expect(marked?.body.messages).toEqual([
      {
        role: 'user',
        content: [
          { ...document, cache_control: { type: 'ephemeral', ttl: '1h' } },
          { type: 'text', text: 'Clause 4?' },
        ],
      },
    ]);
  });

  it('marks the last tool when the tools are the shared prefix', () => {
    // Prepare
    const tools = [
      { name: 'lookup', description: POLICY, input_schema: { type: 'object' } },
      { name: 'refund', description: 'Refunds.', input_schema: { type: 'object' } },
    ];
    const body = { max_tokens: 64, tools, messages: ask('Refund?') };

    // Act
    const marked = withSharedPrefixBreakpoint(body, prefixOf(body, 1));

    // Assess
    expect(marked?.body.tools).toEqual([tools[0], { ...tools[1], cache_control: ephemeral }]);
  });

  it.each<[string, Record<string, unknown>, number, '5m' | '1h', '5m' | '1h']>([
    [
      "the file's hour before a record's own 5-minute breakpoint after the prefix",
      {
        system: POLICY,
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'Ticket 1?', cache_control: ephemeral }] },
        ],
      },
      1,
      '1h',
      '1h',
    ],
    [
      "an hour, though the file's is 5 minutes, before a record's own 1-hour breakpoint after the prefix",
      {
        system: POLICY,
        messages: [
          {
            role: 'user',
            content: [{ type: 'text', text: 'Ticket 1?', cache_control: { ...ephemeral, ttl: '1h' } }],
          },
        ],
      },
      1,
      '5m',
      '1h',
    ],
    [
      "5 minutes, though the file's is an hour, after a record's own 5-minute breakpoint inside the prefix",
      {
        system: [
          { type: 'text', text: 'Be brief.', cache_control: ephemeral },
          { type: 'text', text: POLICY },
        ],
        messages: ask('Ticket 1?'),
      },
      2,
      '1h',
      '5m',
    ],
  ])('gives %s: longer TTLs come first', (_case, fields, blocks, fileTtl, expected) => {
    // Prepare
    const body = { max_tokens: 64, ...fields } as MessagesBody;

    // Act
    const marked = withSharedPrefixBreakpoint(body, { ...prefixOf(body, blocks), ttl: fileTtl });

    // Assess
    expect(marked?.ttl).toBe(expected);
    expect(cacheBreakpointProblem(marked?.body as MessagesBody, ['5m', '1h'])).toBeUndefined();
  });

  it.each([
    [
      'a record that does not start with the prefix',
      { max_tokens: 64, system: `${POLICY}!`, messages: ask('?') },
    ],
    [
      'a record whose block has its own breakpoint',
      {
        max_tokens: 64,
        system: [{ type: 'text', text: POLICY, cache_control: ephemeral }],
        messages: ask('?'),
      },
    ],
    [
      'a record with four breakpoints already',
      {
        max_tokens: 64,
        system: POLICY,
        messages: [
          {
            role: 'user',
            content: ['a', 'b', 'c', 'd'].map((text) => ({ type: 'text', text, cache_control: ephemeral })),
          },
        ],
      },
    ],
  ])('leaves alone %s', (_case, body) => {
    // Prepare: the file's prefix is the policy as a system prompt.
    const shared = prefixOf({ max_tokens: 64, system: POLICY, messages: ask('x') }, 1);

    // Act
    const marked = withSharedPrefixBreakpoint(body, shared);

    // Assess
    expect(marked).toBeUndefined();
  });
});
