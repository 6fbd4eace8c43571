import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { continueJob, startJob } from '../../shared/pipeline/enqueue.ts';
import { finalizeJob } from '../../shared/pipeline/finalize.ts';
import { type SweepOptions, sweepStuckJobs } from '../../shared/pipeline/sweeper.ts';
import { failNext } from '../support/faults.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const lines = (count: number) =>
  Array.from({ length: count }, (_, index) => JSON.stringify({ id: `r${index}`, prompt: `p${index}` })).join(
    '\n',
  );

type Pipeline = ReturnType<typeof pipelineHarness>;

const sweep = (pipeline: Pipeline, minutesLater: number) =>
  sweepStuckJobs(
    { ...pipeline.ports, deadLetters: { count: async () => 0 } },
    sweepOptions(pipeline, minutesLater),
  );

function sweepOptions(pipeline: Pipeline, minutesLater: number): SweepOptions {
  return {
    resumeAfterMinutes: 16,
    stuckAfterMinutes: 30,
    now: new Date(pipeline.clock.now + minutesLater * 60_000),
  };
}

const onlyJobId = (pipeline: Pipeline) => [...pipeline.ledger.jobs.keys()][0] ?? '';
const sentIds = (pipeline: Pipeline) => pipeline.queue.sent.map((message) => message.recordId);

describe('an enqueue that failed part way', () => {
  it('reads on from its saved offset when the event is retried, sending every record', async () => {
    // Prepare
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 2 } });
    pipeline.store.putObject(BUCKET, 'inputs/retry.jsonl', lines(7));
    failNext(pipeline.queue, 'send', { when: () => pipeline.queue.sent.length >= 4 });
    const event = objectCreated('inputs/retry.jsonl');

    // Act
    const first = await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false).catch(
      (error: Error) => error,
    );
    const retry = await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false);

    // Assess
    expect(first).toBeInstanceOf(Error);
    expect(retry).toEqual({ kind: 'read', jobId: onlyJobId(pipeline), totalRecords: 7 });
    expect(sentIds(pipeline)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
  });

  it('is taken up by the sweeper when the reader died holding its lease, and not before', async () => {
    // Prepare: the reader fails and cannot even give its lease back, as a timed-out function cannot.
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 2 } });
    pipeline.store.putObject(BUCKET, 'inputs/crash.jsonl', lines(5));
    failNext(pipeline.queue, 'send', { when: () => pipeline.queue.sent.length >= 2 });
    failNext(pipeline.ledger, 'releaseReading');
    const event = objectCreated('inputs/crash.jsonl');
    await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false).catch(() => undefined);

    // Act
    const duplicate = await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false);
    const early = await sweep(pipeline, 15);
    pipeline.clock.now += 16 * 60_000;
    const late = await sweep(pipeline, 0);
    const resumed = await continueJob(
      pipeline.trigger.continued[0] ?? '',
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Assess
    expect(duplicate.kind).toBe('duplicate');
    expect(early.resumed).toEqual([]);
    expect(late.resumed).toEqual([{ jobId: onlyJobId(pipeline), status: 'enqueuing', resumed: 'read' }]);
    expect(resumed).toMatchObject({ kind: 'read', totalRecords: 5 });
    expect(sentIds(pipeline)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  });

  it('stops reading when another reader has taken the file over', async () => {
    // Prepare
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 2, readingLeaseSeconds: 60 } });
    pipeline.store.putObject(BUCKET, 'inputs/slow.jsonl', lines(6));
    const send = pipeline.queue.send.bind(pipeline.queue);
    // The first reader's first chunk takes longer than its lease; a second reader takes over meanwhile.
    let takeover: Promise<unknown> | undefined;
    pipeline.queue.send = async (messages, delays) => {
      if (takeover === undefined) {
        pipeline.clock.now += 61_000;
        takeover = continueJob(onlyJobId(pipeline), pipeline.ports, pipeline.enqueueSettings, () => false);
        await takeover;
      }
      return send(messages, delays);
    };

    // Act
    const first = await startJob(
      objectCreated('inputs/slow.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Assess
    expect(first.kind).toBe('taken-over');
    expect(await takeover).toMatchObject({ kind: 'read', totalRecords: 6 });
    expect(new Set(sentIds(pipeline))).toEqual(new Set(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']));
  });
});

/** A job of two records, each done, ready to finalize; its first publish is to fail. */
async function doneWithPublishToFail(clock?: { now: number }) {
  const pipeline = pipelineHarness(clock === undefined ? {} : { clock });
  pipeline.store.putObject(BUCKET, 'inputs/event.jsonl', lines(2));
  await startJob(objectCreated('inputs/event.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
  await pipeline.drain();
  const jobId = onlyJobId(pipeline);
  failNext(pipeline.events, 'publish');
  return { pipeline, jobId };
}

/** A job finalized, whose completion event is pending: its first publish failed. */
async function finishedWithEventPending(clock?: { now: number }) {
  const done = await doneWithPublishToFail(clock);
  await finalizeJob(done.jobId, done.pipeline.ports).catch(() => undefined);
  return done;
}

describe('the completion event', () => {
  it('is published by the redelivered finalizer message when the first publish failed', async () => {
    // Prepare
    const { pipeline, jobId } = await doneWithPublishToFail();

    // Act
    const first = await finalizeJob(jobId, pipeline.ports).catch((error: Error) => error);
    const redelivered = await finalizeJob(jobId, pipeline.ports);
    const again = await finalizeJob(jobId, pipeline.ports);

    // Assess
    expect(first).toBeInstanceOf(Error);
    expect([redelivered, again]).toEqual([{ kind: 'already-done' }, { kind: 'already-done' }]);
    expect(pipeline.events.outcomes).toEqual([
      {
        detailType: 'Batch Job Completed',
        detail: expect.objectContaining({
          jobId,
          status: 'completed',
          counts: expect.objectContaining({ total: 2 }),
        }),
      },
    ]);
    expect((await pipeline.ledger.getJob(jobId))?.announcement).toBeUndefined();
  });

  it('is published once when a finalizer, its duplicate delivery and the sweeper find it pending at once', async () => {
    // Prepare
    const { pipeline, jobId } = await finishedWithEventPending();

    // Act
    const [finalizer, duplicate, swept] = await Promise.all([
      finalizeJob(jobId, pipeline.ports),
      finalizeJob(jobId, pipeline.ports),
      sweep(pipeline, 16),
    ]);

    // Assess
    expect([finalizer, duplicate]).toEqual([{ kind: 'already-done' }, { kind: 'already-done' }]);
    expect(swept.resumed).toHaveLength(1);
    expect(pipeline.events.outcomes.map((event) => event.detailType)).toEqual(['Batch Job Completed']);
    expect((await pipeline.ledger.getJob(jobId))?.announcement).toBeUndefined();
  });

  it('is published by a redelivered finalizer once the claim of a step that died holding it runs out', async () => {
    // Prepare
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const { pipeline, jobId } = await finishedWithEventPending(clock);
    await pipeline.ledger.claimAnnouncement(jobId, 30);

    // Act
    const redelivered = finalizeJob(jobId, pipeline.ports);
    await sleep(600);
    const whileHeld = pipeline.events.outcomes.length;
    clock.now += 31_000;

    // Assess
    expect(await redelivered).toEqual({ kind: 'already-done' });
    expect(whileHeld).toBe(0);
    expect(pipeline.events.outcomes.map((event) => event.detailType)).toEqual(['Batch Job Completed']);
  });

  it('is left by the sweeper to its next sweep while another step holds the claim to publish it', async () => {
    // Prepare
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const { pipeline, jobId } = await finishedWithEventPending(clock);
    await pipeline.ledger.claimAnnouncement(jobId, 30);
    const claims = vi.spyOn(pipeline.ledger, 'claimAnnouncement');

    // Act
    const whileHeld = await sweep(pipeline, 16);
    const eventsWhileHeld = pipeline.events.outcomes.length;
    clock.now += 31_000;
    await sweep(pipeline, 16);

    // Assess: one try while held, no waiting; the next sweep publishes.
    expect(whileHeld.resumed).toEqual([{ jobId, status: 'completed', resumed: 'announce' }]);
    expect(eventsWhileHeld).toBe(0);
    expect(claims).toHaveBeenCalledTimes(2);
    expect(pipeline.events.outcomes.map((event) => event.detailType)).toEqual(['Batch Job Completed']);
  });

  it('is published by the sweeper when the finalizer gave up', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/late.jsonl', lines(1));
    await startJob(objectCreated('inputs/late.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
    await pipeline.drain();
    failNext(pipeline.events, 'publish');
    await pipeline.finalizeAll().catch(() => undefined);

    // Act
    const report = await sweep(pipeline, 16);
    const next = await sweep(pipeline, 32);

    // Assess
    expect(report.resumed).toEqual([
      { jobId: onlyJobId(pipeline), status: 'completed', resumed: 'announce' },
    ]);
    expect(next.resumed).toEqual([]);
    expect(pipeline.events.outcomes.map((event) => event.detailType)).toEqual(['Batch Job Completed']);
  });

  it('of a job failed for its file options is published on a duplicate event when the first publish failed', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/bad.jsonl', lines(1), { 'max-tokens': 'lots' });
    failNext(pipeline.events, 'publish');
    const event = objectCreated('inputs/bad.jsonl');

    // Act
    const first = await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false).catch(
      (error: Error) => error,
    );
    const retry = await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false);
    const duplicate = await startJob(event, pipeline.ports, pipeline.enqueueSettings, () => false);

    // Assess
    expect(first).toBeInstanceOf(Error);
    expect([retry.kind, duplicate.kind]).toEqual(['failed', 'failed']);
    expect(pipeline.events.outcomes).toEqual([
      {
        detailType: 'Batch Job Failed',
        detail: expect.objectContaining({ reason: expect.stringMatching(/max-tokens/) }),
      },
    ]);
  });
});

describe('the sweeper', () => {
  it('finalizes a job whose last record was counted but whose finalizer never started', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/unstarted.jsonl', lines(2));
    await startJob(
      objectCreated('inputs/unstarted.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    failNext(pipeline.ledger, 'claimFinalization');
    const lastBatch = await pipeline.drain().catch((error: Error) => error);
    const jobId = onlyJobId(pipeline);

    // Act
    const report = await sweep(pipeline, 16);
    await pipeline.finalizeAll();

    // Assess
    expect(lastBatch).toBeInstanceOf(Error);
    expect(report.resumed).toEqual([{ jobId, status: 'running', resumed: 'finalize' }]);
    expect(pipeline.events.outcomes.map((event) => event.detailType)).toEqual(['Batch Job Completed']);
  });

  it('starts the finalizer again for a job left finalizing', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/dropped.jsonl', lines(2));
    await startJob(
      objectCreated('inputs/dropped.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    await pipeline.drain();
    const jobId = onlyJobId(pipeline);
    pipeline.trigger.finalized.length = 0; // the finalize message was lost

    // Act
    const report = await sweep(pipeline, 16);
    await pipeline.finalizeAll();

    // Assess
    expect(report.resumed).toEqual([{ jobId, status: 'finalizing', resumed: 'finalize' }]);
    expect(pipeline.manifest('inputs/dropped.jsonl')).toMatchObject({ totalRecordCount: 2 });
  });

  it('leaves a running job whose records are still being worked on to the workers', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/busy.jsonl', lines(2));
    await startJob(objectCreated('inputs/busy.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);

    // Act
    const report = await sweep(pipeline, 31);

    // Assess
    expect(report.resumed).toEqual([]);
    expect(report.stuckJobs).toMatchObject([{ status: 'running', minutesWithoutProgress: 31 }]);
    expect(pipeline.trigger.finalized).toEqual([]);
  });
});
