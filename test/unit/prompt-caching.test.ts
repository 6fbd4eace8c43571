import { describe, expect, it } from 'vitest';
import { pipelineHarness } from '../support/pipeline-harness.ts';

const POLICY = `Classify the ticket under the refund policy. ${'Refunds within 30 days of purchase. '.repeat(600)}`;
const file = (count: number, system = POLICY) =>
  Array.from({ length: count }, (_, index) =>
    JSON.stringify({ id: `t${index}`, system, prompt: `Ticket ${index}: the export stopped. Category?` }),
  ).join('\n');

describe('caching the prefix a file shares', () => {
  it('finds it in the first records and marks it in every call that shares it', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    await pipeline.run('inputs/tickets.jsonl', file(30));

    // Assess
    const [job] = pipeline.ledger.jobs.values();
    expect(Object.values(job?.sharedPrefixes ?? {})).toEqual([expect.objectContaining({ blocks: 1 })]);
    expect(pipeline.model.calls).toHaveLength(30);
    for (const call of pipeline.model.calls)
      expect(call.body.system).toEqual([
        { type: 'text', text: POLICY, cache_control: { type: 'ephemeral' } },
      ]);
  });

  it.each([
    ['the file turns caching off', { cache: 'off' }, file(30)],
    ['the shared part is under the model minimum', {}, file(30, 'Be brief.')],
  ])('adds no breakpoint when %s', async (_case, metadata, body) => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    await pipeline.run('inputs/tickets.jsonl', body, metadata);

    // Assess
    expect(pipeline.model.calls.every((call) => typeof call.body.system === 'string')).toBe(true);
    expect([...pipeline.ledger.jobs.values()][0]?.sharedPrefixes).toEqual({});
  });
});
