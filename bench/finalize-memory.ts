/**
 * `npm run bench` (with enqueue-memory and quota): does the finalizer assemble a large job's output in flat
 * memory, and how fast? Runs the real finalizer over jobs of 10^5 and 10^6 records with ports that keep
 * nothing: the ledger's counted records and their result sets (20 records each, a worker batch) are generated
 * as the finalizer reads them, the parts are counted and dropped.
 * Reports time, records per second and peak RSS, and the ratio of peak RSS between the sizes (about 1 means
 * flat). Written to bench/results/finalize-memory.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { resultSetLocation } from '../shared/contract/storage-layout.ts';
import type { CountedEntry, JobRecord, ObjectLocation, StoredResult } from '../shared/core/model.ts';
import { resultSetBody } from '../shared/messages/result-set.ts';
import { type FinalizePorts, finalizeJob } from '../shared/pipeline/finalize.ts';
import { newJobRecord } from '../shared/pipeline/job.ts';
import {
  MemoryLedger,
  MemoryObjectStore,
  RecordingEvents,
  RecordingTrigger,
} from '../test/support/memory-ports.ts';

const sizes = [100_000, 1_000_000];
const JOB_ID = 'job-bench';
/** Records a worker batch finishes together: one result set. */
const SET_SIZE = 20;

function storedResult(line: number): StoredResult {
  return {
    subject: { recordId: `r${line}`, lineNumber: line, family: 'plain' },
    outcome: {
      status: 'succeeded',
      response: {
        id: `msg_${line}`,
        type: 'message',
        role: 'assistant',
        content: [
          { type: 'text', text: `The summary of item ${line} of the nightly export, in one sentence.` },
        ],
        stop_reason: 'end_turn',
        usage: { input_tokens: 24, output_tokens: 16 },
      },
    },
    completion: {
      lineNumber: line,
      status: 'succeeded',
      family: 'plain',
      inputTokens: 24,
      outputTokens: 16,
      cacheCreationInputTokens: 0,
      cacheReadInputTokens: 0,
      costNanoUsd: 520_000,
      uncachedCostNanoUsd: 520_000,
    },
    timing: {
      finishedAt: new Date(Date.parse('2026-11-25T10:00:00Z') + line * 10).toISOString(),
      attempts: 1,
      modelId: 'global.anthropic.claude-opus-4-6-v1',
      latencyMs: 800 + (line % 900),
    },
  };
}

/** The job's counted records, generated as the finalizer reads them. */
class GeneratedLedger extends MemoryLedger {
  constructor(
    private readonly recordCount: number,
    private readonly setOf: (line: number) => string,
  ) {
    super();
  }

  override async *countedRecords(_jobId: string, afterLine: number): AsyncIterable<CountedEntry> {
    for (let line = afterLine + 1; line <= this.recordCount; line += 1)
      yield { lineNumber: line, resultSet: this.setOf(line) };
  }
}

/** Result sets generated as they are read; what is written is counted and dropped. */
class CountingStore extends MemoryObjectStore {
  bytesWritten = 0;

  constructor(private readonly linesOf: (key: string) => readonly number[]) {
    super();
  }

  override async read(location: ObjectLocation): Promise<Uint8Array> {
    return new TextEncoder().encode(resultSetBody(this.linesOf(location.key).map(storedResult)));
  }

  override async startMultipart(): Promise<string> {
    return 'upload-1';
  }

  override async uploadPart(
    _location: ObjectLocation,
    _uploadId: string,
    part: number,
    body: Uint8Array,
  ): Promise<string> {
    this.bytesWritten += body.length;
    return `etag-${part}`;
  }

  override async completeMultipart(): Promise<void> {}

  override async put(_location: ObjectLocation, body: string | Uint8Array): Promise<void> {
    this.bytesWritten += body.length;
  }
}

async function generatedPorts(records: number) {
  const job: JobRecord = {
    ...newJobRecord(
      JOB_ID,
      { bucket: 'bench', key: 'inputs/bench.jsonl' },
      { model: 'opus-4.6', region: 'us-west-2', endpoint: 'global', defaultMaxTokens: 64 },
      '2026-11-25T10:00:00.000Z',
    ),
    status: 'finalizing',
    totalRecords: records,
    doneRecords: records,
    familyCounts: { plain: records },
  };
  // Results in sets of a worker batch each, as the worker stores them.
  const setOf = (line: number) => resultSetLocation(job, String(Math.floor((line - 1) / SET_SIZE))).key;
  const linesOf = (key: string) => {
    const first = Number(key.slice(key.lastIndexOf('/') + 1, -'.jsonl'.length)) * SET_SIZE + 1;
    return Array.from({ length: Math.min(SET_SIZE, records - first + 1) }, (_, index) => first + index);
  };
  const ledger = new GeneratedLedger(records, setOf);
  await ledger.createJob(job);
  const store = new CountingStore(linesOf);
  const trigger = new RecordingTrigger();
  const ports: FinalizePorts = { store, ledger, events: new RecordingEvents(), finalize: trigger };
  return { ports, outputBytes: () => store.bytesWritten };
}

/** One size in this process: time, speed and peak memory, as one JSON line on stdout. */
async function measure(records: number) {
  const { ports, outputBytes } = await generatedPorts(records);
  let peakRss = process.memoryUsage().rss;
  let peakHeap = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    const usage = process.memoryUsage();
    peakRss = Math.max(peakRss, usage.rss);
    peakHeap = Math.max(peakHeap, usage.heapUsed);
  }, 20);
  const started = performance.now();
  const outcome = await finalizeJob(JOB_ID, ports);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  if (outcome.kind !== 'completed') throw new Error(`expected the job completed, got ${outcome.kind}`);
  const megabytes = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
  return {
    records,
    seconds: Math.round(seconds * 10) / 10,
    recordsPerSecond: Math.round(records / seconds),
    peakRssMb: megabytes(peakRss),
    peakHeapMb: megabytes(peakHeap),
    outputMb: megabytes(outputBytes()),
  };
}

const sizeArgument = process.argv.indexOf('--records');
if (sizeArgument !== -1) {
  process.stdout.write(`${JSON.stringify(await measure(Number(process.argv[sizeArgument + 1])))}\n`);
} else {
  // Each size in a process of its own: a peak RSS is a process's, and the allocator keeps what it freed.
  const results: Array<Awaited<ReturnType<typeof measure>>> = [];
  for (const records of sizes) {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--records', String(records)],
      {
        encoding: 'utf8',
      },
    );
    if (child.status !== 0) throw new Error(`the ${records}-record run failed:\n${child.stderr}`);
    const result = JSON.parse(child.stdout) as Awaited<ReturnType<typeof measure>>;
    results.push(result);
    process.stdout.write(
      `finalize ${records.toLocaleString('en-US')} records: ${result.seconds} s, ${result.recordsPerSecond.toLocaleString('en-US')} records/s, peak RSS ${result.peakRssMb} MB (heap ${result.peakHeapMb} MB), output ${result.outputMb} MB\n`,
    );
  }
  const first = results[0];
  const last = results.at(-1);
  const peakRssRatio =
    first === undefined || last === undefined
      ? undefined
      : Math.round((last.peakRssMb / first.peakRssMb) * 100) / 100;
  process.stdout.write(
    `peak RSS ratio at ${(last?.records ?? 0) / (first?.records ?? 1)}x the records: ${peakRssRatio} (1.00 is flat)\n`,
  );
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(
    new URL('./results/finalize-memory.json', import.meta.url),
    `${JSON.stringify({ benchmark: 'finalize-memory', results, peakRssRatio }, null, 2)}\n`,
  );
}
