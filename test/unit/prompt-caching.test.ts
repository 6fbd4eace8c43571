import { describe, expect, it } from 'vitest';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { textResponse } from '../support/memory-ports.ts';
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
    expect(Object.values(job?.sharedPrefixes ?? {})).toEqual([
      expect.objectContaining({ blocks: 1, ttl: '5m' }),
    ]);
    expect(pipeline.model.calls).toHaveLength(30);
    for (const call of pipeline.model.calls)
      expect(call.body.system).toEqual([
        { type: 'text', text: POLICY, cache_control: { type: 'ephemeral' } },
      ]);
  });

  it('gives it an hour when the file takes longer than 5 minutes to drain at the quota, and prices the write so', async () => {
    // Prepare: 1,000 tokens a minute, and about 270 a record once the prefix is cached: 8 minutes. The first
    // call writes 6,000 tokens, the others read them.
    let calls = 0;
    const pipeline = pipelineHarness({
      enqueue: { tokensPerMinute: 1_000 },
      answer: () => {
        calls += 1;
        const cache =
          calls === 1 ? { cache_creation_input_tokens: 6_000 } : { cache_read_input_tokens: 6_000 };
        return textResponse('Refund.', { input_tokens: 10, output_tokens: 5, ...cache });
      },
    });

    // Act
    await pipeline.run('inputs/tickets.jsonl', file(30));

    // Assess: Opus, in nano-USD a token: input 5,000, output 25,000, 1-hour write 10,000, read 500.
    const [job] = pipeline.ledger.jobs.values();
    expect(Object.values(job?.sharedPrefixes ?? {})).toEqual([expect.objectContaining({ ttl: '1h' })]);
    for (const call of pipeline.model.calls)
      expect(call.body.system).toEqual([
        { type: 'text', text: POLICY, cache_control: { type: 'ephemeral', ttl: '1h' } },
      ]);
    expect(job?.totals.costNanoUsd).toBe(30 * (10 * 5_000 + 5 * 25_000) + 6_000 * 10_000 + 29 * 6_000 * 500);
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
  async function queued(count: number, options: Parameters<typeof pipelineHarness>[0] = {}) {
    const pipeline = pipelineHarness(options);
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

  it('reserves for the calls that read it what Bedrock will charge them: their reads are released', async () => {
    // Prepare: the first call writes 6,000 tokens, every later call reads them.
    let calls = 0;
    const { pipeline, messages } = await queued(8, {
      answer: () => {
        calls += 1;
        const cache =
          calls === 1 ? { cache_creation_input_tokens: 6_000 } : { cache_read_input_tokens: 6_000 };
        return textResponse('Refund.', { input_tokens: 10, output_tokens: 5, ...cache });
      },
    });

    // Act: a first batch, before any call has read, then a second.
    await pipeline.workBatch(messages.slice(0, 4));
    await pipeline.workBatch(messages.slice(4));

    // Assess: what each call takes (a batch's first also holds its headroom, Bedrock's reservation of reads).
    // The writer goes alone; its batch's readers follow before any read is seen, reserved in full.
    const [writer, firstReaders, secondBatch] = pipeline.budget.asked.map((ask) => ask.tokens);
    expect(writer).toHaveLength(1);
    expect(firstReaders?.every((tokens) => tokens > 6_000)).toBe(true);
    expect(secondBatch).toHaveLength(4);
    expect(secondBatch?.slice(1).every((tokens) => tokens < 100)).toBe(true);
  });
});
