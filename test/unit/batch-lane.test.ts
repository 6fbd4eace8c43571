import { describe, expect, it } from 'vitest';
import { batchRecordId } from '../../shared/batch/staging.ts';
import { onBatchJobChange, onDeadlineAlarm, sweepBatchParts } from '../../shared/batch/watch.ts';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { catalogWith } from '../support/factories.ts';
import { failNext } from '../support/faults.ts';
import { textResponse } from '../support/memory-ports.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

/** `count` plain-form prompts, each its own. */
function promptsFile(count: number): string {
  return Array.from({ length: count }, (_, index) =>
    JSON.stringify({ id: `p${index}`, prompt: `Item ${index}` }),
  ).join('\n');
}

const answerEcho = (_: string, body: Record<string, unknown>) =>
  textResponse(`answer to ${JSON.stringify(body.messages)}`, { input_tokens: 100, output_tokens: 40 });

/** Starts a job for `body` with the given file options; the records it stages wait for their batch job. */
async function startStaged(metadata: Record<string, string>, body: string, key = 'inputs/batch.jsonl') {
  const pipeline = pipelineHarness({ answer: answerEcho });
  pipeline.store.putObject(BUCKET, key, body, metadata);
  const outcome = await startJob(objectCreated(key), pipeline.ports, pipeline.enqueueSettings, () => false);
  const job = [...pipeline.ledger.jobs.values()][0];
  if (job === undefined) throw new Error('no job');
  return { pipeline, outcome, jobId: job.jobId };
}

const settings = (now = Date.parse('2026-11-25T10:00:00Z')) => ({
  catalog: defaultCatalog,
  clock: { now: () => now },
});

describe('the batch lane', () => {
  it('stages a file of 150 records as one batch job, sending nothing to the record queue', async () => {
    // Act
    const { pipeline, jobId } = await startStaged({ lane: 'batch' }, promptsFile(150));

    // Assess
    expect(pipeline.queue.sent).toEqual([]);
    expect(pipeline.batchJobs.jobs).toHaveLength(1);
    expect(pipeline.batchJobs.jobs[0]?.request).toMatchObject({
      modelId: 'global.anthropic.claude-opus-4-6-v1',
      clientRequestToken: `bb-${jobId}-part-0`,
      inputUri: `s3://${BUCKET}/work/${jobId}/batch/part-00000/input/`,
      timeoutHours: 168,
    });
    const job = await pipeline.ledger.getJob(jobId);
    expect(job?.batchParts?.['part-00000']).toMatchObject({ records: 150, state: 'submitted' });
    expect(job?.status).toBe('running');
  });

  it('gives exactly the output an on-demand run gives, redriving error lines and missing records once', async () => {
    // Prepare
    const file = promptsFile(120);
    const onDemand = pipelineHarness({ answer: answerEcho });
    await onDemand.run('inputs/batch.jsonl', file);
    const { pipeline, jobId } = await startStaged({ lane: 'batch' }, file);
    const [batchJob] = pipeline.batchJobs.jobs;
    const faulty = new Map([
      [batchRecordId(3), 'error' as const],
      [batchRecordId(5), 'missing' as const],
    ]);
    await pipeline.batchJobs.end(
      batchJob?.jobArn ?? '',
      'PartiallyCompleted',
      (id) => faulty.get(id) ?? 'answer',
    );

    // Act
    const collected = await onBatchJobChange(
      {
        jobName: batchJob?.request.jobName ?? '',
        jobArn: batchJob?.jobArn ?? '',
        status: 'PartiallyCompleted',
      },
      pipeline.ports,
      settings(),
    );
    const redriven = pipeline.queue.sent.map((message) => message.lineNumber);
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    expect(collected).toEqual({ kind: 'collected', answered: 118, redriven: 2 });
    expect(redriven.sort()).toEqual([3, 5]);
    expect(pipeline.model.calls).toHaveLength(2);
    expect(pipeline.outputLines('inputs/batch.jsonl')).toEqual(onDemand.outputLines('inputs/batch.jsonl'));
    const manifest = pipeline.manifest('inputs/batch.jsonl');
    expect(manifest).toMatchObject({ totalRecordCount: 120, successRecordCount: 120 });
    // 118 records at half the price and 2 at the full price, where on demand paid the full price for 120.
    const onDemandCost = Number(onDemand.manifest('inputs/batch.jsonl')?.estimatedCostUsd);
    expect(Number(manifest?.estimatedCostUsd)).toBeCloseTo((onDemandCost * (118 / 2 + 2)) / 120, 6);
    expect((await pipeline.ledger.getJob(jobId))?.status).toBe('completed');
  });

  it('redrives every record of a job that failed as a whole', async () => {
    // Prepare
    const { pipeline } = await startStaged({ lane: 'batch' }, promptsFile(100));
    const [batchJob] = pipeline.batchJobs.jobs;
    await pipeline.batchJobs.end(batchJob?.jobArn ?? '', 'Failed', () => 'missing');

    // Act
    await onBatchJobChange(
      { jobName: batchJob?.request.jobName ?? '', jobArn: batchJob?.jobArn ?? '', status: 'Failed' },
      pipeline.ports,
      settings(),
    );

    // Assess
    expect(pipeline.queue.sent).toHaveLength(100);
  });

  it('collects a part once, however often its end is told', async () => {
    // Prepare
    const { pipeline } = await startStaged({ lane: 'batch' }, promptsFile(100));
    const [batchJob] = pipeline.batchJobs.jobs;
    await pipeline.batchJobs.end(batchJob?.jobArn ?? '', 'Completed');
    const change = {
      jobName: batchJob?.request.jobName ?? '',
      jobArn: batchJob?.jobArn ?? '',
      status: 'Completed',
    };

    // Act
    const first = await onBatchJobChange(change, pipeline.ports, settings());
    const again = await onBatchJobChange(change, pipeline.ports, settings());
    const swept = await sweepBatchParts(pipeline.ports, settings());

    // Assess
    expect([first.kind, again.kind]).toEqual(['collected', 'already-collected']);
    expect(swept).toBe(0);
    expect(pipeline.trigger.finalized).toHaveLength(1);
  });

  it('submits one batch job for a part however often the file is read', async () => {
    // Prepare
    const { pipeline, jobId } = await startStaged({ lane: 'batch' }, promptsFile(100));
    const job = await pipeline.ledger.getJob(jobId);
    if (job === undefined) throw new Error('no job');

    // Act: the part is staged again, as a retried read would find it.
    const part = job.batchParts?.['part-00000'];
    await pipeline.ledger.moveBatchPart(jobId, ['submitted'], {
      part: 0,
      records: 100,
      bytes: 20_000,
      state: 'staged',
    });
    await sweepBatchParts(pipeline.ports, settings());

    // Assess
    expect(part?.state).toBe('submitted');
    expect(pipeline.batchJobs.jobs).toHaveLength(1);
  });

  it("launches the parts of a file whose reader died between the file's end and their launch, on the next sweep", async () => {
    // Prepare: the file is read to its end, then its reader dies as it plans the parts.
    const pipeline = pipelineHarness({ answer: answerEcho });
    pipeline.store.putObject(BUCKET, 'inputs/batch.jsonl', promptsFile(150), { lane: 'batch' });
    failNext(pipeline.ledger, 'planBatchParts');
    const died = await startJob(
      objectCreated('inputs/batch.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    ).catch((error: Error) => error);
    const jobId = [...pipeline.ledger.jobs.keys()][0] ?? '';
    const retried = await startJob(
      objectCreated('inputs/batch.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Act
    await sweepBatchParts(pipeline.ports, settings());

    // Assess: the retried event found the file read; the sweep planned and submitted its one part.
    expect(died).toBeInstanceOf(Error);
    expect(retried.kind).toBe('duplicate');
    expect(pipeline.batchJobs.jobs).toHaveLength(1);
    expect((await pipeline.ledger.getJob(jobId))?.batchParts?.['part-00000']).toMatchObject({
      records: 150,
      state: 'submitted',
    });
  });

  it('leaves a part the region has no room for staged, and submits it on a later sweep', async () => {
    // Prepare
    const pipeline = pipelineHarness({ answer: answerEcho });
    pipeline.batchJobs.refusals.push('ServiceQuotaExceededException');
    pipeline.store.putObject(BUCKET, 'inputs/busy.jsonl', promptsFile(100), { lane: 'batch' });

    // Act
    await startJob(objectCreated('inputs/busy.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
    const [job] = pipeline.ledger.jobs.values();
    const waiting = job?.batchParts?.['part-00000']?.state;
    await sweepBatchParts(pipeline.ports, settings());

    // Assess
    expect(waiting).toBe('staged');
    expect(pipeline.batchJobs.jobs).toHaveLength(1);
    expect((await pipeline.ledger.getJob(job?.jobId ?? ''))?.batchParts?.['part-00000']?.state).toBe(
      'submitted',
    );
  });

  it('runs a part on demand when Bedrock refuses its submit for good, saying why', async () => {
    // Prepare: the service role is not allowed to be passed.
    const pipeline = pipelineHarness({ answer: answerEcho });
    pipeline.batchJobs.refusals.push('AccessDeniedException');
    pipeline.store.putObject(BUCKET, 'inputs/denied.jsonl', promptsFile(100), { lane: 'batch' });

    // Act
    await startJob(
      objectCreated('inputs/denied.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Assess
    const [job] = pipeline.ledger.jobs.values();
    expect(job?.batchParts?.['part-00000']).toMatchObject({
      state: 'on-demand',
      endedAs: expect.stringMatching(/^submit refused: AccessDeniedException/),
    });
    expect(pipeline.queue.sent).toHaveLength(100);
  });

  it('stops the batch job of a canceled file, keeps what it answered and cancels the rest', async () => {
    // Prepare
    const { pipeline, jobId } = await startStaged({ lane: 'batch' }, promptsFile(100));
    const [batchJob] = pipeline.batchJobs.jobs;
    await pipeline.ledger.cancelJob(jobId);

    // Act
    await sweepBatchParts(pipeline.ports, settings());
    await pipeline.batchJobs.end(batchJob?.jobArn ?? '', 'Stopped', (id) =>
      id <= batchRecordId(30) ? 'answer' : 'missing',
    );
    await sweepBatchParts(pipeline.ports, settings());
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    expect(pipeline.batchJobs.stops).toEqual([batchJob?.jobArn]);
    expect(pipeline.manifest('inputs/batch.jsonl')).toMatchObject({
      status: 'canceled',
      successRecordCount: 30,
      canceledRecordCount: 70,
    });
    expect(pipeline.model.calls).toEqual([]);
  });

  it('runs a part larger than a batch job may read on demand', async () => {
    // Prepare: batch jobs limited to 1,000 bytes.
    const catalog = catalogWith((data) => {
      data.batch.maximumJobBytes = 1_000;
    });
    const pipeline = pipelineHarness({ answer: answerEcho, enqueue: { catalog } });
    pipeline.store.putObject(BUCKET, 'inputs/large.jsonl', promptsFile(100), { lane: 'batch' });

    // Act
    await startJob(
      objectCreated('inputs/large.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Assess
    expect(pipeline.batchJobs.jobs).toEqual([]);
    expect(pipeline.queue.sent).toHaveLength(100);
  });

  it.each([
    ['auto, 99 records', { lane: 'auto' }, 99],
    ['batch, 40 records', { lane: 'batch' }, 40],
    ['auto, a 6-hour deadline', { lane: 'auto', deadline: '6h' }, 150],
  ])('runs on demand: %s', async (_case, metadata, records) => {
    // Act
    const { pipeline } = await startStaged(metadata, promptsFile(records));

    // Assess
    expect(pipeline.batchJobs.jobs).toEqual([]);
    expect(pipeline.queue.sent).toHaveLength(records);
  });

  it("sets an alarm for the job's deadline when it submits a batch job, and none without a deadline", async () => {
    // Act
    const withDeadline = await startStaged({ lane: 'batch', deadline: '6h' }, promptsFile(100));
    const without = await startStaged({ lane: 'batch' }, promptsFile(100));

    // Assess: the deadline is six hours on; SQS waits 15 minutes at most, so the alarm comes back sooner.
    const createdAt = Date.parse(
      (await withDeadline.pipeline.ledger.getJob(withDeadline.jobId))?.createdAt ?? '',
    );
    expect(withDeadline.pipeline.alarms.alarmsSet).toEqual([
      { alarm: { v: 1, jobId: withDeadline.jobId, at: createdAt + 6 * 3_600_000 }, delaySeconds: 900 },
    ]);
    expect(without.pipeline.alarms.alarmsSet).toEqual([]);
  });

  describe.each([
    ['an hour early, is set again for the rest of the wait', -3_600_000, 'early', 900, []],
    ['ten seconds early, is set again for those ten seconds', -10_000, 'early', 10, []],
    ['at the deadline, stops the batch job at once', 0, 'acted', undefined, ['stopped']],
    ['after the deadline, stops the batch job at once', 60_000, 'acted', undefined, ['stopped']],
  ])('a deadline alarm that goes off %s', (_case, offsetMs, outcome, delaySeconds, stops) => {
    it('acts on the deadline at its time, not at the next sweep', async () => {
      // Prepare
      const { pipeline, jobId } = await startStaged({ lane: 'batch', deadline: '6h' }, promptsFile(100));
      const [set] = pipeline.alarms.alarmsSet.splice(0);
      if (set === undefined) throw new Error('no alarm');

      // Act
      const result = await onDeadlineAlarm(
        set.alarm,
        { ...pipeline.ports, alarms: pipeline.alarms },
        settings(set.alarm.at + offsetMs),
      );

      // Assess
      expect(result).toBe(outcome);
      expect(pipeline.alarms.alarmsSet.map((again) => again.delaySeconds)).toEqual(
        delaySeconds === undefined ? [] : [delaySeconds],
      );
      expect(pipeline.batchJobs.stops.map(() => 'stopped')).toEqual(stops);
      expect((await pipeline.ledger.getJob(jobId))?.status).toBe('running');
    });
  });

  it('does nothing when the alarm finds the job ended', async () => {
    // Prepare: the job ended before its deadline.
    const { pipeline, jobId } = await startStaged({ lane: 'batch', deadline: '6h' }, promptsFile(100));
    const [set] = pipeline.alarms.alarmsSet;
    if (set === undefined) throw new Error('no alarm');
    Object.assign(pipeline.ledger.jobs.get(jobId) ?? {}, { status: 'completed' });

    // Act
    const ports = { ...pipeline.ports, alarms: pipeline.alarms };
    const result = await onDeadlineAlarm(set.alarm, ports, settings(set.alarm.at));

    // Assess
    expect(result).toBe('nothing');
    expect(pipeline.batchJobs.stops).toEqual([]);
  });

  it('stops a batch job at the deadline and finishes what it did not on demand', async () => {
    // Prepare: a 6-hour deadline; the sweeper looks at 7 hours.
    const { pipeline } = await startStaged({ lane: 'batch', deadline: '6h' }, promptsFile(100));
    const [batchJob] = pipeline.batchJobs.jobs;
    const sevenHoursLater = Date.parse('2026-11-25T17:00:00Z');

    // Act
    await sweepBatchParts(pipeline.ports, settings(sevenHoursLater));
    await pipeline.batchJobs.end(batchJob?.jobArn ?? '', 'Stopped', (id) =>
      id < batchRecordId(41) ? 'answer' : 'missing',
    );
    await sweepBatchParts(pipeline.ports, settings(sevenHoursLater));

    // Assess
    expect(pipeline.batchJobs.stops).toEqual([batchJob?.jobArn]);
    expect(batchJob?.request.timeoutHours).toBe(24);
    expect(pipeline.queue.sent).toHaveLength(60);
  });
});
