import { describe, expect, it } from 'vitest';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { finalizeJob } from '../../shared/pipeline/finalize.ts';
import { failNext } from '../support/faults.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const RECORDS = 60;
const lines = Array.from({ length: RECORDS }, (_, index) =>
  JSON.stringify({ id: `r${index}`, prompt: `p${index}` }),
);

/** A job whose records are all done, waiting for its finalizer. */
async function doneJob() {
  const pipeline = pipelineHarness();
  pipeline.store.putObject(BUCKET, 'inputs/big.jsonl', lines.join('\n'));
  await startJob(objectCreated('inputs/big.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
  await pipeline.drain();
  const jobId = pipeline.trigger.finalized.splice(0)[0] ?? '';
  const job = await pipeline.ledger.getJob(jobId);
  if (job === undefined) throw new Error('no job');
  const outputOf = () =>
    (pipeline.store.text(BUCKET, outputLocations(job).output.key) ?? '')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string });
  return { pipeline, jobId, outputOf };
}

/** Parts of about five lines, so a small job has many. */
const SMALL_PARTS = { partBytes: 400, partsInFlight: 3, reading: { readsInFlight: 4, windowLines: 8 } };

describe('a finalizer with checkpoints', () => {
  it('hands over near its deadline and goes on in new invocations, writing every line once, in order', async () => {
    // Prepare
    const { pipeline, jobId, outputOf } = await doneJob();
    let invocations = 0;

    // Act: every invocation stops after its first part.
    let outcome = await finalizeJob(jobId, pipeline.ports, { ...SMALL_PARTS, shouldStop: () => true });
    invocations += 1;
    while (outcome.kind === 'continued') {
      expect(pipeline.trigger.finalized.splice(0)).toEqual([jobId]);
      outcome = await finalizeJob(jobId, pipeline.ports, { ...SMALL_PARTS, shouldStop: () => true });
      invocations += 1;
    }

    // Assess
    expect(outcome.kind).toBe('completed');
    expect(invocations).toBeGreaterThan(5);
    expect(outputOf().map((line) => line.id)).toEqual(lines.map((_, index) => `r${index}`));
    expect(pipeline.manifest('inputs/big.jsonl')).toMatchObject({ totalRecordCount: RECORDS });
    expect((await pipeline.ledger.getJob(jobId))?.finalizeCheckpoint).toBeUndefined();
  });

  it('is retried from its checkpoint after dying, not from zero', async () => {
    // Prepare: the upload of the fifth part fails, as a crash there would end the invocation.
    const { pipeline, jobId, outputOf } = await doneJob();
    failNext(pipeline.store, 'uploadPart', { when: (...args) => args[2] === 5 });
    const readsFrom: number[] = [];
    const countedRecords = pipeline.ledger.countedRecords.bind(pipeline.ledger);
    pipeline.ledger.countedRecords = (jobId, afterLine) => {
      readsFrom.push(afterLine);
      return countedRecords(jobId, afterLine);
    };

    // Act
    const first = await finalizeJob(jobId, pipeline.ports, SMALL_PARTS).catch((error: Error) => error);
    const retry = await finalizeJob(jobId, pipeline.ports, SMALL_PARTS);

    // Assess: the retry reads on from the last line of the parts saved before the failed one.
    expect(first).toBeInstanceOf(Error);
    expect(retry.kind).toBe('completed');
    expect(readsFrom[0]).toBe(0);
    expect(readsFrom[1]).toBeGreaterThan(10);
    expect(outputOf().map((line) => line.id)).toEqual(lines.map((_, index) => `r${index}`));
  });

  it('finishes the job on its next try after dying right after completing the upload', async () => {
    // Prepare: the upload is completed, then the invocation dies before the manifest.
    const { pipeline, jobId, outputOf } = await doneJob();
    const completeMultipart = pipeline.store.completeMultipart.bind(pipeline.store);
    pipeline.store.completeMultipart = async (...args) => {
      await completeMultipart(...args);
      pipeline.store.completeMultipart = completeMultipart;
      throw new Error('died after completing');
    };

    // Act
    const first = await finalizeJob(jobId, pipeline.ports, SMALL_PARTS).catch(
      (error: Error) => error.message,
    );
    const retry = await finalizeJob(jobId, pipeline.ports, SMALL_PARTS);

    // Assess
    expect(first).toBe('died after completing');
    expect(retry.kind).toBe('completed');
    expect(outputOf().map((line) => line.id)).toEqual(lines.map((_, index) => `r${index}`));
    expect(pipeline.manifest('inputs/big.jsonl')).toMatchObject({
      totalRecordCount: RECORDS,
      status: 'completed',
    });
  });

  it('uploads several parts at once while it reads on', async () => {
    // Prepare
    const { pipeline, jobId } = await doneJob();
    let uploading = 0;
    let mostAtOnce = 0;
    const uploadPart = pipeline.store.uploadPart.bind(pipeline.store);
    pipeline.store.uploadPart = async (...args) => {
      uploading += 1;
      mostAtOnce = Math.max(mostAtOnce, uploading);
      await new Promise((resolve) => setTimeout(resolve, 5));
      uploading -= 1;
      return uploadPart(...args);
    };

    // Act
    const outcome = await finalizeJob(jobId, pipeline.ports, SMALL_PARTS);

    // Assess
    expect(outcome.kind).toBe('completed');
    expect(mostAtOnce).toBe(3);
  });
});
