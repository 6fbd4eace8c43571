import { describe, expect, it } from 'vitest';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { describeJob } from '../../shared/pipeline/status.ts';
import { sweepStuckJobs } from '../../shared/pipeline/sweeper.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const plainLines = (count: number) =>
  Array.from({ length: count }, (_, index) => JSON.stringify({ id: `r${index}`, prompt: 'x' })).join('\n');

describe('describeJob', () => {
  it('shows progress, tokens and cost so far while a job runs', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/s.jsonl', plainLines(4));
    await startJob(objectCreated('inputs/s.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
    const [first] = pipeline.queue.sent.splice(0, 1);
    if (first === undefined) throw new Error('no message');
    await pipeline.work(first);

    // Act
    const view = describeJob((await pipeline.ledger.getJob(first.jobId)) ?? fail());

    // Assess
    expect(view).toMatchObject({
      status: 'running',
      input: `s3://${BUCKET}/inputs/s.jsonl`,
      records: { total: 4, read: 4, done: 1, succeeded: 1, failed: 0, remaining: 3 },
      percentDone: 25,
      tokens: { input: 10, output: 5 },
      estimatedCostUsd: 0.000175,
      pools: [{ pool: 'us-west-2#global.anthropic.claude-opus-4-6-v1', records: 1 }],
    });
  });
});

describe('sweepStuckJobs', () => {
  it('reports jobs without progress for longer than the limit, and DLQ messages, on the bus', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/stuck.jsonl', plainLines(2));
    await startJob(
      objectCreated('inputs/stuck.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    const updatedAt = Date.parse(
      (await pipeline.ledger.getJob(pipeline.queue.sent[0]?.jobId ?? ''))?.updatedAt ?? '',
    );

    // Act
    const early = await sweepStuckJobs(
      { ...pipeline.ports, deadLetters: { count: async () => 0 } },
      { resumeAfterMinutes: 16, stuckAfterMinutes: 30, now: new Date(updatedAt + 29 * 60_000) },
    );
    const late = await sweepStuckJobs(
      { ...pipeline.ports, deadLetters: { count: async () => 2 } },
      { resumeAfterMinutes: 16, stuckAfterMinutes: 30, now: new Date(updatedAt + 31 * 60_000) },
    );

    // Assess
    expect(early).toEqual({ resumed: [], stuckJobs: [], deadLetterMessages: 0 });
    expect(late).toMatchObject({
      stuckJobs: [{ status: 'running', minutesWithoutProgress: 31, doneRecords: 0, totalRecords: 2 }],
      deadLetterMessages: 2,
    });
    expect(pipeline.events.outcomes).toEqual([
      { detailType: 'Batch Jobs Stuck', detail: expect.objectContaining({ deadLetterMessages: 2 }) },
    ]);
  });

  it('leaves finished jobs alone', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    await pipeline.run('inputs/done.jsonl', plainLines(1));

    // Act
    const report = await sweepStuckJobs(
      { ...pipeline.ports, deadLetters: { count: async () => 0 } },
      { resumeAfterMinutes: 0, stuckAfterMinutes: 0, now: new Date('2030-01-01T00:00:00Z') },
    );

    // Assess
    expect(report.stuckJobs).toEqual([]);
  });
});

function fail(): never {
  throw new Error('no job');
}
