import { describe, expect, it } from 'vitest';
import { finalizeCheckpointOf } from '../../functions/adapters/job-item.ts';
import { legacyResultLocation, resultSetLocation } from '../../shared/contract/storage-layout.ts';
import type { CountedEntry, StoredResult } from '../../shared/core/model.ts';
import { PipelineError } from '../../shared/errors.ts';
import { parseLegacyResult, parseResultSet, resultSetBody } from '../../shared/messages/result-set.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { resultsInOrder } from '../../shared/pipeline/results-in-order.ts';
import { storedResult } from '../support/factories.ts';
import { MemoryObjectStore } from '../support/memory-ports.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';
import { thrown } from '../support/thrown.ts';

const job = { jobId: 'job-1', source: { bucket: BUCKET, key: 'inputs/a.jsonl' } };

const outcomes: Array<[string, StoredResult['outcome']]> = [
  [
    'succeeded',
    {
      status: 'succeeded',
      response: { id: 'msg_1', content: [{ type: 'text', text: 'Hi' }], stop_reason: 'end_turn', usage: {} },
    },
  ],
  [
    'errored',
    {
      status: 'errored',
      failure: {
        code: 'VALIDATION',
        message: 'bad',
        httpStatus: 400,
        anthropicType: 'invalid_request_error',
      },
    },
  ],
  ['canceled', { status: 'canceled' }],
  ['expired', { status: 'expired' }],
];

describe('a result set object', () => {
  it.each(outcomes)('gives back a %s result as it was stored', (_, outcome) => {
    // Prepare
    const stored = [storedResult(3, outcome), storedResult(7)];

    // Act
    const read = parseResultSet(Buffer.from(resultSetBody(stored)), 'sets/x.jsonl');

    // Assess
    expect(read).toEqual(stored);
  });

  it('gives back what a completion says beyond its tokens: its pool, tier, downgrade and unknown price', () => {
    // Prepare
    const plain = storedResult(4);
    const stored = [
      {
        ...plain,
        completion: {
          ...plain.completion,
          pool: 'us-west-2#global.anthropic.claude-opus-4-6-v1',
          servedTier: 'default' as const,
          downgraded: true,
          unpriced: true,
        },
      },
    ];

    // Act
    const read = parseResultSet(Buffer.from(resultSetBody(stored)), 'sets/x.jsonl');

    // Assess
    expect(read).toEqual(stored);
  });

  it.each([
    ['a line that is not JSON', '{"v":1,', /sets\/x\.jsonl line 1 is not JSON/],
    [
      'a version it does not know',
      JSON.stringify({ ...storedResult(1), v: 2 }),
      /sets\/x\.jsonl line 1: .*v/s,
    ],
    [
      'a result without its completion',
      JSON.stringify({ v: 1, subject: storedResult(1).subject }),
      /completion/,
    ],
  ])('refuses %s, naming the object and line', (_, body, message) => {
    // Act
    const error = thrown(PipelineError, () => parseResultSet(Buffer.from(`${body}\n`), 'sets/x.jsonl'));

    // Assess
    expect(error).toMatchObject({ code: 'INVALID_RESULT', message: expect.stringMatching(message) });
  });

  it('reads a result an earlier version stored on its own, its cost then its uncached cost', () => {
    // Prepare
    const { uncachedCostNanoUsd: _, ...completion } = { ...storedResult(4).completion, costNanoUsd: 900 };
    const legacy = { ...storedResult(4), completion };

    // Act
    const read = parseLegacyResult(Buffer.from(JSON.stringify(legacy)), 'results/0000000004.json');

    // Assess
    expect(read.completion).toMatchObject({ costNanoUsd: 900, uncachedCostNanoUsd: 900 });
  });
});

/** Results stored in sets as the ledger says: `sets` maps a set's id to its lines. */
function storedAs(sets: Readonly<Record<string, readonly number[]>>, ownObjects: readonly number[] = []) {
  const store = new MemoryObjectStore();
  const entries: CountedEntry[] = [];
  for (const [setId, lines] of Object.entries(sets)) {
    const location = resultSetLocation(job, setId);
    store.putObject(BUCKET, location.key, resultSetBody(lines.map((line) => storedResult(line))));
    entries.push(...lines.map((lineNumber) => ({ lineNumber, resultSet: location.key })));
  }
  for (const line of ownObjects) {
    store.putObject(BUCKET, legacyResultLocation(job, line).key, JSON.stringify(storedResult(line)));
    entries.push({ lineNumber: line, resultSet: undefined });
  }
  entries.sort((a, b) => a.lineNumber - b.lineNumber);
  const reads: string[] = [];
  const read = store.read.bind(store);
  store.read = async (location) => {
    reads.push(location.key);
    return read(location);
  };
  const ledger = {
    async *countedRecords(_jobId: string, afterLine: number) {
      yield* entries.filter((entry) => entry.lineNumber > afterLine);
    },
  };
  return { ports: { store, ledger }, reads };
}

async function linesOf(results: AsyncIterable<StoredResult>): Promise<number[]> {
  const lines: number[] = [];
  for await (const each of results) lines.push(each.completion.lineNumber);
  return lines;
}

describe('reading a job’s results in line order', () => {
  it('reads each set once while its lines are still to come, however its lines interleave', async () => {
    // Prepare: two batches finished odd and even lines; windows of two lines.
    const { ports, reads } = storedAs({ odd: [1, 3, 5, 7], even: [2, 4, 6, 8] });

    // Act
    const lines = await linesOf(resultsInOrder(job, ports, 0, { readsInFlight: 4, windowLines: 2 }));

    // Assess
    expect(lines).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(reads).toHaveLength(2);
  });

  it('starts after the line a checkpoint saved', async () => {
    // Prepare
    const { ports } = storedAs({ a: [1, 2, 3], b: [4, 5] });

    // Act
    const lines = await linesOf(resultsInOrder(job, ports, 3, { readsInFlight: 4, windowLines: 2 }));

    // Assess
    expect(lines).toEqual([4, 5]);
  });

  it('reads results stored one per object by an earlier version among those in sets', async () => {
    // Prepare
    const { ports, reads } = storedAs({ a: [1, 3] }, [2, 4]);

    // Act
    const lines = await linesOf(resultsInOrder(job, ports, 0, { readsInFlight: 4, windowLines: 3 }));

    // Assess
    expect(lines).toEqual([1, 2, 3, 4]);
    expect(reads.filter((key) => key.endsWith('.json'))).toHaveLength(2);
  });

  it.each([
    ['is gone', undefined, /^the result set .*a\.jsonl vanished during finalization$/],
    [
      'lacks the line',
      resultSetBody([storedResult(2)]),
      /^the result of line 1 vanished during finalization$/,
    ],
  ])('fails loudly when a set the ledger points to %s', async (_, body, message) => {
    // Prepare
    const { ports } = storedAs({ a: [1, 2] });
    const key = `${BUCKET}/${resultSetLocation(job, 'a').key}`;
    if (body === undefined) ports.store.objects.delete(key);
    else ports.store.putObject(BUCKET, resultSetLocation(job, 'a').key, body);

    // Act
    const error = await linesOf(resultsInOrder(job, ports, 0, { readsInFlight: 4, windowLines: 2 })).catch(
      (failure: Error) => failure,
    );

    // Assess
    expect(error).toMatchObject({ message: expect.stringMatching(message) });
  });
});

describe('the worker’s result sets', () => {
  it('stores a batch’s results in one object per job and points each counted record to it', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    const lines = Array.from({ length: 6 }, (_, index) => JSON.stringify({ id: `r${index}`, prompt: 'Hi' }));
    pipeline.store.putObject(BUCKET, 'inputs/six.jsonl', lines.join('\n'));
    await startJob(objectCreated('inputs/six.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => false);
    const messages = pipeline.queue.sent.splice(0);
    const jobId = messages[0]?.jobId ?? '';

    // Act
    await pipeline.workBatch(messages);

    // Assess
    const sets = [...pipeline.store.objects.keys()].filter((key) => key.includes('/sets/'));
    expect(sets).toHaveLength(1);
    const counted: CountedEntry[] = [];
    for await (const entry of pipeline.ledger.countedRecords(jobId, 0)) counted.push(entry);
    expect(counted.map((entry) => entry.lineNumber)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(counted.map((entry) => `${BUCKET}/${entry.resultSet}`))).toEqual(new Set(sets));
  });
});

describe('a saved finalize checkpoint', () => {
  it.each([
    ['today’s, by line', { lastLine: 40 }],
    ['an earlier version’s, by result object', { lastResultKey: 'work/job-1/results/0000000040.json' }],
  ])('reads %s as the last line written', (_, position) => {
    // Prepare
    const saved = {
      uploadId: 'u1',
      parts: [{ part: 1, etag: 'e1' }],
      linesWritten: 40,
      stats: {},
      ...position,
    };

    // Act
    const checkpoint = finalizeCheckpointOf(JSON.stringify(saved));

    // Assess
    expect(checkpoint).toEqual({
      uploadId: 'u1',
      parts: [{ part: 1, etag: 'e1' }],
      linesWritten: 40,
      stats: {},
      lastLine: 40,
    });
  });
});
