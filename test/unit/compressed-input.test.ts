import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompressedLocation } from '../../shared/pipeline/job.ts';
import { textResponse } from '../support/memory-ports.ts';
import { pipelineHarness } from '../support/pipeline-harness.ts';

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
