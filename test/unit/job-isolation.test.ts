import { describe, expect, it } from 'vitest';
import { INLINE_MESSAGE_BYTES } from '../../shared/messages/record-message.ts';
import { continueJob, startJob } from '../../shared/pipeline/enqueue.ts';
import { outputLocations } from '../../shared/pipeline/job.ts';
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
    ],
    [
      'long lines, read back from the object, are errors',
      LONG,
      [undefined, undefined],
      ['INPUT_CHANGED', 'INPUT_CHANGED'],
    ],
  ])(
    'are two jobs, each with its own output; of the first, %s, never the other upload',
    async (_case, padding, texts, codes) => {
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
      expect(pipeline.events.published.map((event) => [event.detailType, event.detail.jobId])).toEqual(
        expect.arrayContaining([
          ['Batch Job Completed', first.jobId],
          ['Batch Job Completed', second.jobId],
        ]),
      );
    },
  );

  it('fails a job whose file changes while it is being read, with the reason on the bus', async () => {
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

    // Assess
    expect(started.kind).toBe('continued');
    expect(continued).toMatchObject({
      kind: 'failed',
      reason: expect.stringMatching(/changed while its job ran/),
    });
    expect(pipeline.events.published).toEqual([
      {
        detailType: 'Batch Job Failed',
        detail: expect.objectContaining({ jobId: continued.kind === 'failed' ? continued.jobId : '' }),
      },
    ]);
    expect(pipeline.model.calls).toHaveLength(0);
  });
});
