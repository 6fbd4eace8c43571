import { describe, expect, it } from 'vitest';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { INLINE_MESSAGE_BYTES } from '../../shared/messages/record-message.ts';
import { continueJob, startJob } from '../../shared/pipeline/enqueue.ts';
import { textResponse } from '../support/memory-ports.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const lines = (version: string, count: number, padding = '') =>
  Array.from({ length: count }, (_, index) =>
    JSON.stringify({ id: `r${index}`, prompt: `${version}-${index}${padding}` }),
  ).join('\n');

/** A prompt long enough that its record travels by reference and is read back from the object. */
const LONG = ' '.repeat(INLINE_MESSAGE_BYTES);

/** The model answers with the prompt it got, so each result shows which upload it came from. */
const echoPrompt = () =>
  pipelineHarness({
    answer: (_, body) => textResponse(String((body.messages as Array<{ content: string }>)[0]?.content)),
  });

describe('two uploads of one key', () => {
  it.each([
    [
      'short lines, carried in their messages, answer from the first upload',
      '',
      ['v1-0', 'v1-1'],
      [undefined, undefined],
      'completed',
    ],
    [
      'long lines, read back from the object, are errors and the job is superseded by the second',
      LONG,
      [undefined, undefined],
      ['INPUT_CHANGED', 'INPUT_CHANGED'],
      'superseded',
    ],
  ])(
    'are two jobs, each with its own output; of the first, %s, never the other upload',
    async (_case, padding, texts, codes, firstStatus) => {
      // Prepare: the first upload's records are queued when the second upload replaces the object.
      const pipeline = echoPrompt();
      const key = 'inputs/twice.jsonl';
      pipeline.store.putObject(BUCKET, key, lines('v1', 2, padding));
      const first = await startJob(objectCreated(key), pipeline.ports, pipeline.enqueueSettings, () => false);
      pipeline.store.putObject(BUCKET, key, lines('v2', 3));
      const second = await startJob(
        objectCreated(key),
        pipeline.ports,
        pipeline.enqueueSettings,
        () => false,
      );

      // Act
      await pipeline.drain();
      await pipeline.finalizeAll();

      // Assess
      if (!('jobId' in first) || !('jobId' in second)) throw new Error('no jobs');
      expect(first.jobId).not.toBe(second.jobId);
      const outputOf = (jobId: string) =>
        (
          pipeline.store.text(
            BUCKET,
            outputLocations({ jobId, source: { bucket: BUCKET, key } }).output.key,
          ) ?? ''
        )
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line) as { status: string; text?: string; error?: { code: string } });
      expect(outputOf(first.jobId).map((line) => line.text?.trimEnd())).toEqual(texts);
      expect(outputOf(first.jobId).map((line) => line.error?.code)).toEqual(codes);
      expect(outputOf(second.jobId).map((line) => line.text)).toEqual(['v2-0', 'v2-1', 'v2-2']);
      const ended = (jobId: string) => pipeline.events.outcomes.find((event) => event.detail.jobId === jobId);
      expect(ended(first.jobId)).toMatchObject({
        detailType: firstStatus === 'superseded' ? 'Batch Job Superseded' : 'Batch Job Completed',
        detail:
          firstStatus === 'superseded'
            ? {
                status: 'superseded',
                supersededBy: second.jobId,
                reason: `s3://${BUCKET}/${key} was replaced while its job ran: job ${second.jobId} runs the newer upload.`,
              }
            : { status: 'completed' },
      });
      expect(ended(second.jobId)).toMatchObject({ detail: { status: 'completed' } });
      expect(await pipeline.ledger.getJob(first.jobId)).toMatchObject({ status: firstStatus });
      const manifestKey = outputLocations({ jobId: first.jobId, source: { bucket: BUCKET, key } }).manifest
        .key;
      const manifest = JSON.parse(pipeline.store.text(BUCKET, manifestKey) ?? '{}');
      expect(manifest).toMatchObject({ status: firstStatus });
      expect(manifest.stats.errors).toEqual(
        firstStatus === 'superseded' ? [{ code: 'INPUT_CHANGED', records: 2, firstLine: 1 }] : [],
      );
    },
  );

  it('ends a job whose file changes while it is being read as superseded by the newer upload, on the bus', async () => {
    // Prepare
    const pipeline = echoPrompt();
    const key = 'inputs/changing.jsonl';
    pipeline.store.putObject(BUCKET, key, lines('v1', 6));
    const started = await startJob(
      objectCreated(key),
      pipeline.ports,
      { ...pipeline.enqueueSettings, chunkLines: 2 },
      () => true,
    );
    pipeline.store.putObject(BUCKET, key, lines('v2', 6));

    // Act
    const continued = await continueJob(
      pipeline.trigger.continued[0] ?? '',
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    await pipeline.drain();
    const newer = await startJob(objectCreated(key), pipeline.ports, pipeline.enqueueSettings, () => true);

    // Assess
    expect(started.kind).toBe('continued');
    if (!('jobId' in newer) || continued.kind !== 'failed') throw new Error('no newer job');
    const reason = `s3://${BUCKET}/${key} was replaced while its job ran: job ${newer.jobId} runs the newer upload.`;
    expect(continued).toEqual({ kind: 'failed', jobId: continued.jobId, reason });
    expect(pipeline.events.outcomes).toEqual([
      {
        detailType: 'Batch Job Superseded',
        detail: {
          jobId: continued.jobId,
          input: `s3://${BUCKET}/${key}`,
          status: 'superseded',
          reason,
          supersededBy: newer.jobId,
        },
      },
    ]);
    expect(await pipeline.ledger.getJob(continued.jobId)).toMatchObject({
      status: 'superseded',
      failureReason: reason,
    });
    expect(pipeline.model.calls).toHaveLength(0);
  });
});
