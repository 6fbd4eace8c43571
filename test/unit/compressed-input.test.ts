import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompressedLocation } from '../../shared/contract/storage-layout.ts';
import { continueJob, startJob } from '../../shared/pipeline/enqueue.ts';
import { describeJob } from '../../shared/pipeline/status.ts';
import { textResponse } from '../support/memory-ports.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

const line = (id: string, prompt: string) => JSON.stringify({ id, prompt });

/** The model answers with the length of the prompt it got, so each result shows it read the right line. */
const promptLengths = () =>
  pipelineHarness({
    answer: (_, body) =>
      textResponse(String((body.messages as Array<{ content: string }>)[0]?.content.length ?? 0)),
  });

describe('a .jsonl.gz file', () => {
  it('runs as the same file uncompressed does, its records read by byte range from a decompressed copy', async () => {
    // Prepare
    const text = ['a', 'b', 'c']
      .map((id, index) => line(id, `Prompt ${id} ${'x'.repeat(index * 10)}`))
      .join('\n');
    const plain = promptLengths();
    const compressed = promptLengths();

    // Act
    await plain.run('inputs/p.jsonl', text);
    await compressed.run('inputs/p.jsonl.gz', gzipSync(text));

    // Assess
    expect(compressed.outputLines('inputs/p.jsonl.gz')).toEqual(plain.outputLines('inputs/p.jsonl'));
    const job = [...compressed.ledger.jobs.values()][0];
    if (job === undefined) throw new Error('no job');
    expect(job.decompressed?.key).toBe(decompressedLocation(job).key);
    expect(compressed.model.calls).toHaveLength(3);
  });

  it('is decompressed in parts when it is large, and every line comes through in order', async () => {
    // Prepare: nine lines of about 1.1 MB, 10 MB decompressed, a few kilobytes compressed.
    const pipeline = promptLengths();
    const ids = Array.from({ length: 9 }, (_, index) => `big-${index}`);
    const text = ids.map((id) => line(id, `${id} ${'word '.repeat(220_000)}`)).join('\n');

    // Act
    await pipeline.run('inputs/big.jsonl.gz', gzipSync(text));

    // Assess
    const output = pipeline.outputLines('inputs/big.jsonl.gz');
    expect(output.map((result) => [result.id, result.status, result.text])).toEqual(
      ids.map((id) => [id, 'succeeded', String(id.length + 1 + 5 * 220_000)]),
    );
    expect(pipeline.store.uploads.size).toBe(0);
  });
});

describe('a .jsonl.gz file cut short', () => {
  it('runs the lines before the cut, the cut line as an error record, and says in the manifest and event what is missing', async () => {
    // Prepare: 400 lines of random text (so the gzip data runs evenly), cut in the middle.
    const text = Array.from({ length: 400 }, (_, index) =>
      line(`r${index}`, `Prompt ${index} ${randomText(60)}`),
    ).join('\n');
    const packed = gzipSync(text);
    const pipeline = promptLengths();

    // Act
    await pipeline.run('inputs/cut.jsonl.gz', packed.subarray(0, Math.floor(packed.length / 2)));

    // Assess: about half the lines ran, in order; the last is the cut line.
    const output = pipeline.outputLines('inputs/cut.jsonl.gz');
    expect(output.length).toBeGreaterThan(150);
    expect(output.length).toBeLessThan(250);
    expect(
      output
        .slice(0, -1)
        .every((result, index) => result.id === `r${index}` && result.status === 'succeeded'),
    ).toBe(true);
    expect(output.at(-1)).toMatchObject({ status: 'errored', error: { code: 'INVALID_JSON' } });
    const notice =
      /^cut\.jsonl\.gz is cut short: its gzip data ends mid-stream after [\d.]+ KiB of JSON Lines\. The lines before the cut ran/;
    expect(pipeline.manifest('inputs/cut.jsonl.gz')).toMatchObject({
      inputNotice: expect.stringMatching(notice),
    });
    const [job] = pipeline.ledger.jobs.values();
    if (job === undefined) throw new Error('no job');
    expect(describeJob(job).inputNotice).toMatch(notice);
    expect(pipeline.events.outcomes).toEqual([
      {
        detailType: 'Batch Job Completed',
        detail: expect.objectContaining({ inputNotice: expect.stringMatching(notice) }),
      },
    ]);
  });
});

describe('a .jsonl.gz file that decompresses to more than the deployment reads', () => {
  it('fails its job at once, naming the limit, without reading the rest', async () => {
    // Prepare: 2 MiB of newlines, in 2 KiB of gzip, against a limit of 64 KiB.
    const pipeline = pipelineHarness({ enqueue: { maxDecompressedBytes: 64 * 1024 } });
    const bomb = gzipSync(Buffer.alloc(2 * 1024 * 1024, '\n'));

    // Act
    const { outcome } = await pipeline.run('inputs/bomb.jsonl.gz', bomb);

    // Assess
    expect(outcome).toMatchObject({
      kind: 'failed',
      reason: expect.stringMatching(
        /^bomb\.jsonl\.gz decompresses to more than 64 KiB, the most this deployment reads from one compressed file \(maxDecompressedBytes\)\. Split it/,
      ),
    });
    expect(pipeline.store.text(BUCKET, decompressedKeyOf(pipeline))).toBeUndefined();
  });
});

describe('decompression stopped part way', () => {
  // 20 MiB decompressed: two whole 8 MiB parts and a last one.
  const text = Array.from({ length: 20 }, (_, index) =>
    line(`big-${index}`, `${index} ${'word '.repeat(209_000)}`),
  ).join('\n');

  it('near the deadline goes on in the next invocation, sending only the parts not yet sent', async () => {
    // Prepare
    const pipeline = promptLengths();
    pipeline.store.putObject(BUCKET, 'inputs/big.jsonl.gz', gzipSync(text));
    const sent = countPartsSent(pipeline);

    // Act: the first invocation is at its deadline after its first part.
    const first = await startJob(
      objectCreated('inputs/big.jsonl.gz'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => true,
    );
    const [job] = pipeline.ledger.jobs.values();
    const afterFirst = { ...job?.decompressing, parts: sent.length };
    const second = await continueJob(job?.jobId ?? '', pipeline.ports, pipeline.enqueueSettings, () => false);

    // Assess
    expect(first).toMatchObject({ kind: 'continued', recordsRead: 0 });
    expect(afterFirst).toMatchObject({ bytes: 8 * 1024 * 1024, parts: 1 });
    expect(second).toMatchObject({ kind: 'read', totalRecords: 20 });
    expect(sent).toEqual([1, 2, 3]);
    expect(pipeline.store.text(BUCKET, decompressedKeyOf(pipeline))).toBe(text);
  });

  it('by a crash goes on from the last part saved when the event is retried', async () => {
    // Prepare: the invocation dies sending its second part.
    const pipeline = promptLengths();
    pipeline.store.putObject(BUCKET, 'inputs/big.jsonl.gz', gzipSync(text));
    const sent = countPartsSent(pipeline, { crashAtCall: 2 });
    const start = () =>
      startJob(objectCreated('inputs/big.jsonl.gz'), pipeline.ports, pipeline.enqueueSettings, () => false);

    // Act
    const crash = await start().catch((error: Error) => error.message);
    const retried = await start();

    // Assess: part 1 was sent once; part 2 once more after the crash.
    expect(crash).toBe('crash sending a part');
    expect(retried).toMatchObject({ kind: 'read', totalRecords: 20 });
    expect(sent).toEqual([1, 2, 2, 3]);
    expect(pipeline.store.text(BUCKET, decompressedKeyOf(pipeline))).toBe(text);
  });
});

function randomText(words: number): string {
  return Array.from({ length: words }, () => Math.random().toString(36).slice(2, 8)).join(' ');
}

function decompressedKeyOf(pipeline: ReturnType<typeof pipelineHarness>): string {
  const [job] = pipeline.ledger.jobs.values();
  if (job === undefined) throw new Error('no job');
  return decompressedLocation(job).key;
}

/** The part numbers sent, in order; the `crashAtCall`th send throws as a killed invocation would. */
function countPartsSent(
  pipeline: ReturnType<typeof pipelineHarness>,
  options: { crashAtCall?: number } = {},
): number[] {
  const sent: number[] = [];
  const uploadPart = pipeline.store.uploadPart.bind(pipeline.store);
  pipeline.store.uploadPart = async (location, uploadId, part, body) => {
    sent.push(part);
    if (sent.length === options.crashAtCall) throw new Error('crash sending a part');
    return uploadPart(location, uploadId, part, body);
  };
  return sent;
}
