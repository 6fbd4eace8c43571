import type { ObjectCreated } from '../../shared/events/object-created.ts';
import { DEFAULT_RETRY_POLICY } from '../../shared/failures.ts';
import type { RecordMessage } from '../../shared/messages/record-message.ts';
import type { MessagesResponse } from '../../shared/output/result-records.ts';
import { type EnqueueOutcome, type EnqueueSettings, startJob } from '../../shared/pipeline/enqueue.ts';
import { finalizeJob } from '../../shared/pipeline/finalize.ts';
import { outputLocations } from '../../shared/pipeline/job.ts';
import type { JobSettings, Ledger } from '../../shared/pipeline/ports.ts';
import { processRecord, type RecordVerdict, type WorkerSettings } from '../../shared/pipeline/worker.ts';
import {
  MemoryBudget,
  MemoryLedger,
  MemoryObjectStore,
  MemoryQueue,
  RecordingEvents,
  RecordingTrigger,
  ScriptedModel,
  textResponse,
} from './memory-ports.ts';

export const BUCKET = 'pipeline-bucket';
export const jobDefaults: JobSettings = {
  model: 'opus-4.6',
  region: 'us-west-2',
  endpoint: 'global',
  defaultMaxTokens: 256,
};

export function objectCreated(key: string): ObjectCreated {
  return {
    eventId: 'e1',
    time: '2026-11-25T10:00:00Z',
    region: 'us-west-2',
    bucket: BUCKET,
    eventKey: key,
    keyCandidates: [key],
    size: undefined,
    etag: undefined,
    versionId: undefined,
    sequencer: undefined,
  };
}

/** The pipeline's domain wired to in-memory ports, with the queue driven by hand. */
export function pipelineHarness(
  options: {
    answer?: (modelId: string, body: Record<string, unknown>, call: number) => MessagesResponse;
    budget?: MemoryBudget;
    enqueue?: Partial<EnqueueSettings>;
    worker?: Partial<WorkerSettings>;
    clock?: { now: number };
  } = {},
) {
  const clock = options.clock ?? { now: Date.parse('2026-11-25T10:00:00Z') };
  const now = () => clock.now;
  const store = new MemoryObjectStore();
  const ledger = new MemoryLedger(now);
  const queue = new MemoryQueue();
  const events = new RecordingEvents();
  const trigger = new RecordingTrigger();
  const model = new ScriptedModel(
    options.answer ?? ((_, body) => textResponse(`echo ${JSON.stringify(body.messages).length}`)),
  );
  const budget = options.budget ?? new MemoryBudget();
  const ports = {
    store,
    ledger: ledger as Ledger,
    queue,
    events,
    continuation: trigger,
    finalize: trigger,
    model,
    budget,
  };
  const enqueueSettings: EnqueueSettings = {
    defaults: jobDefaults,
    maxLineBytes: 25_000_000,
    chunkLines: 3,
    now: () => new Date(clock.now),
    ...options.enqueue,
  };
  const workerSettings: WorkerSettings = {
    policy: DEFAULT_RETRY_POLICY,
    outputBurndown: 5,
    leaseSeconds: 60,
    owner: 'worker-1',
    random: () => 0.5,
    ...options.worker,
  };
  const signal = new AbortController().signal;

  const work = async (message: RecordMessage): Promise<RecordVerdict> =>
    processRecord(message, await ledger.getJob(message.jobId), ports, workerSettings, signal);

  /** Runs every queued message until the queue is empty, putting retried ones back; returns the verdicts. */
  const drain = async (maxRounds = 50): Promise<RecordVerdict[]> => {
    const verdicts: RecordVerdict[] = [];
    for (let round = 0; round < maxRounds && queue.sent.length > 0; round += 1) {
      const batch = queue.sent.splice(0);
      for (const message of batch) {
        const verdict = await work(message);
        verdicts.push(verdict);
        if (verdict.kind === 'retry') {
          clock.now += verdict.delaySeconds * 1000;
          queue.sent.push(message);
        }
      }
    }
    return verdicts;
  };

  const finalizeAll = async () => {
    for (const jobId of trigger.finalized.splice(0))
      await finalizeJob(jobId, ports, () => new Date(clock.now));
  };

  /** Uploads `body` as `key`, starts the job, runs the queue and the finalizer. */
  const run = async (key: string, body: string, metadata: Record<string, string> = {}) => {
    store.putObject(BUCKET, key, body, metadata);
    const outcome: EnqueueOutcome = await startJob(objectCreated(key), ports, enqueueSettings, () => false);
    const verdicts = await drain();
    await finalizeAll();
    return { outcome, verdicts };
  };

  const outputLines = (key: string) =>
    (store.text(BUCKET, outputLocations({ bucket: BUCKET, key }).output.key) ?? '')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const manifest = (key: string) =>
    JSON.parse(store.text(BUCKET, outputLocations({ bucket: BUCKET, key }).manifest.key) ?? 'null') as Record<
      string,
      unknown
    > | null;

  return {
    clock,
    store,
    ledger,
    queue,
    events,
    trigger,
    model,
    budget,
    ports,
    enqueueSettings,
    workerSettings,
    work,
    drain,
    finalizeAll,
    run,
    outputLines,
    manifest,
  };
}
