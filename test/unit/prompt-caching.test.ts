import { describe, expect, it } from 'vitest';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const OPUS = 'global.anthropic.claude-opus-4-6-v1';

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

describe('writing a shared prefix once', () => {
  /** A job of `count` records sharing the policy, read and queued, its messages taken off the queue. */
  async function queued(count: number) {
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/tickets.jsonl', file(count));
    await startJob(
      objectCreated('inputs/tickets.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    const [job] = pipeline.ledger.jobs.values();
    return { pipeline, jobId: job?.jobId ?? '', messages: pipeline.queue.sent.splice(0) };
  }

  it('lets one call write it, then the rest of the batch read, and keeps when it was written', async () => {
    // Prepare
    const { pipeline, jobId, messages } = await queued(10);

    // Act
    const verdicts = await pipeline.workBatch(messages);

    // Assess
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(Array(10).fill('done'));
    expect((await pipeline.ledger.getJob(jobId))?.prefixWrites[OPUS]).toMatchObject({
      writer: 'worker-1',
      writtenAt: pipeline.clock.now,
    });
  });

  it('sends the records back for a few seconds while another worker writes it', async () => {
    // Prepare: another worker has claimed the write and not finished it.
    const { pipeline, jobId, messages } = await queued(5);
    const now = pipeline.clock.now;
    await pipeline.ledger.claimPrefixWrite(jobId, OPUS, {
      owner: 'worker-2',
      until: now + 60_000,
      freshAfter: 0,
      now,
    });

    // Act
    const verdicts = await pipeline.workBatch(messages);

    // Assess
    expect(verdicts).toEqual(Array(5).fill({ kind: 'wait', cause: 'prefix', delaySeconds: 3 }));
    expect(pipeline.model.calls).toEqual([]);
  });

  it('reads without claiming once a fresh write stands, and takes the write over from a writer that stopped', async () => {
    // Prepare
    const { pipeline, jobId, messages } = await queued(4);
    const now = pipeline.clock.now;
    await pipeline.ledger.claimPrefixWrite(jobId, OPUS, {
      owner: 'gone',
      until: now - 1,
      freshAfter: 0,
      now: now - 60_000,
    });

    // Act
    const verdicts = await pipeline.workBatch(messages);

    // Assess
    expect(verdicts.every((verdict) => verdict.kind === 'done')).toBe(true);
    expect((await pipeline.ledger.getJob(jobId))?.prefixWrites[OPUS]?.writer).toBe('worker-1');
  });
});
