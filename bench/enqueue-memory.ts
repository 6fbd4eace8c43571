/**
 * `npm run bench`: does reading a file stay in flat memory however long the file is?
 * Streams generated JSONL files of 10^5 and 10^6 lines (10^7 with --full) through the real enqueue code with
 * ports that keep nothing (S3 is a generator, the ledger and the queue only count), samples the heap, and
 * reports the ratio of peak heaps: about 1 means flat. Written to bench/results/enqueue-memory.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { defaultCatalog } from '../shared/catalog/catalog.ts';
import type { ObjectInfo } from '../shared/core/model.ts';
import type { ObjectCreated } from '../shared/events/object-created.ts';
import type { RecordMessage } from '../shared/messages/record-message.ts';
import { type EnqueuePorts, startJob } from '../shared/pipeline/enqueue.ts';
import {
  MemoryLedger,
  MemoryObjectStore,
  RecordingEvents,
  RecordingTrigger,
} from '../test/support/memory-ports.ts';

const sizes = process.argv.includes('--full') ? [100_000, 1_000_000, 10_000_000] : [100_000, 1_000_000];

async function* generatedFile(lines: number): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  let batch = '';
  for (let index = 1; index <= lines; index += 1) {
    batch += `{"id": "r${index}", "prompt": "Summarise item ${index} of the nightly export in one sentence.", "max_tokens": 64}\n`;
    if (batch.length > 64 * 1024) {
      yield encoder.encode(batch);
      batch = '';
    }
  }
  if (batch !== '') yield encoder.encode(batch);
}

/** The memory ledger, claiming every id without keeping it: the file's ids are all different. */
class ForgetfulLedger extends MemoryLedger {
  override async claimRecordIds(): Promise<ReadonlyMap<string, number>> {
    return new Map();
  }
}

/** The input as a generator: the file is never held. */
class GeneratedInput extends MemoryObjectStore {
  constructor(private readonly lines: number) {
    super();
  }

  override async head(): Promise<ObjectInfo> {
    return { size: 0, etag: 'etag', versionId: undefined, metadata: {} };
  }

  override stream(): AsyncIterable<Uint8Array> {
    return generatedFile(this.lines);
  }
}

function countingPorts(lines: number) {
  let sent = 0;
  const trigger = new RecordingTrigger();
  const ports: EnqueuePorts = {
    store: new GeneratedInput(lines),
    ledger: new ForgetfulLedger(),
    queue: {
      send: async (messages: readonly RecordMessage[]) => {
        sent += messages.length;
      },
      changeVisibility: async () => {},
    },
    events: new RecordingEvents(),
    continuation: trigger,
    finalize: trigger,
  };
  return { ports, sent: () => sent };
}

const event: ObjectCreated = {
  eventId: 'bench',
  time: new Date().toISOString(),
  region: 'us-west-2',
  bucket: 'bench',
  eventKey: 'inputs/bench.jsonl',
  keyCandidates: ['inputs/bench.jsonl'],
  size: undefined,
  etag: undefined,
  versionId: undefined,
  sequencer: undefined,
};

const results: Array<{ lines: number; seconds: number; peakHeapMb: number; linesPerSecond: number }> = [];
for (const lines of sizes) {
  globalThis.gc?.();
  const { ports, sent } = countingPorts(lines);
  let peak = process.memoryUsage().heapUsed;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
  }, 20);
  const started = performance.now();
  const outcome = await startJob(
    event,
    ports,
    {
      defaults: { model: 'opus-4.6', region: 'us-west-2', endpoint: 'global', defaultMaxTokens: 64 },
      maxLineBytes: defaultCatalog.requestBodyLimitBytes,
    },
    () => false,
  );
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  if (outcome.kind !== 'read' || outcome.totalRecords !== lines || sent() !== lines) {
    throw new Error(`expected ${lines} records read and sent, got ${JSON.stringify(outcome)} and ${sent()}`);
  }
  results.push({ lines, seconds, peakHeapMb: peak / 2 ** 20, linesPerSecond: lines / seconds });
  process.stdout.write(
    `enqueue ${lines.toLocaleString('en-US')} lines: ${seconds.toFixed(1)} s, ${Math.round(lines / seconds).toLocaleString('en-US')} lines/s, peak heap ${(peak / 2 ** 20).toFixed(1)} MB\n`,
  );
}
const first = results[0];
const last = results.at(-1);
const peakHeapRatio =
  first === undefined || last === undefined ? undefined : last.peakHeapMb / first.peakHeapMb;
if (first !== undefined && last !== undefined && peakHeapRatio !== undefined) {
  process.stdout.write(
    `peak heap ratio ${last.lines / first.lines}x lines: ${peakHeapRatio.toFixed(2)} (1.00 is flat)\n`,
  );
}
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/enqueue-memory.json', import.meta.url),
  `${JSON.stringify({ benchmark: 'enqueue-memory', results, peakHeapRatio }, null, 2)}\n`,
);
