import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';
import type { ServiceTier } from '../../shared/contract/service-tiers.ts';
import { outputLocations } from '../../shared/contract/storage-layout.ts';
import type { Clock } from '../../shared/core/clock.ts';
import type { Ledger } from '../../shared/core/ledger.ts';
import type { JobSettings } from '../../shared/core/model.ts';
import type { ObjectCreated } from '../../shared/events/object-created.ts';
import { DEFAULT_RETRY_POLICY } from '../../shared/failures.ts';
import type { RecordMessage } from '../../shared/messages/record-message.ts';
import type { MessagesResponse } from '../../shared/output/result-records.ts';
import { type EnqueueOutcome, type EnqueueSettings, startJob } from '../../shared/pipeline/enqueue.ts';
import { finalizeJob } from '../../shared/pipeline/finalize.ts';
import type { RecordVerdict, WorkerSettings } from '../../shared/worker/batch.ts';
import { processBatch } from '../../shared/worker/process-batch.ts';
import {
  MemoryBatchJobs,
  MemoryBudget,
  MemoryLedger,
  MemoryObjectStore,
  MemoryQueue,
  RecordingAlarms,
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
export interface HarnessOptions {
  answer?: (
    modelId: string,
    body: Record<string, unknown>,
    call: number,
    serviceTier: ServiceTier | undefined,
  ) => MessagesResponse;
  /** What each call waits for before its answer comes (answers come at once unless given). */
  answering?: () => Promise<void>;
  budget?: MemoryBudget;
  enqueue?: Partial<EnqueueSettings>;
  worker?: Partial<WorkerSettings>;
  clock?: { now: number };
}

export function pipelineHarness(options: HarnessOptions = {}) {
  const clock = options.clock ?? { now: Date.parse('2026-11-25T10:00:00Z') };
  const now = () => clock.now;
  const store = new MemoryObjectStore();
  const ledger = new MemoryLedger(now, { countsDailySpend: options.worker?.maxDailyCostUsd !== undefined });
  const queue = new MemoryQueue();
  const events = new RecordingEvents();
  const trigger = new RecordingTrigger();
  const alarms = new RecordingAlarms();
  const answer =
    options.answer ?? ((_, body) => textResponse(`echo ${JSON.stringify(body.messages).length}`));
  const model = new ScriptedModel(answer, options.answering);
  // Bedrock's batch jobs answer as its runtime does: the same text for the same body.
  const batchJobs = new MemoryBatchJobs(store, (modelId, body) => answer(modelId, body, 0, undefined));
  const budget = options.budget ?? new MemoryBudget(undefined, now);
  const ports = {
    store,
    ledger: ledger as Ledger,
    queue,
    events,
    continuation: trigger,
    finalize: trigger,
    model,
    budget,
    batchJobs,
    alarms,
  };
  const enqueueSettings: EnqueueSettings = {
    defaults: jobDefaults,
    maxLineBytes: 25_000_000,
    chunkLines: 3,
    clock: { now },
    ...options.enqueue,
  };
  /** Time passes only when the test says, or when a worker waits for its tokens. */
  const fakeClock: Clock = {
    now,
    sleepUntil: async (time) => {
      // Let everything already under way finish first, as it would while a real sleep lasts.
      await new Promise((resolve) => setImmediate(resolve));
      clock.now = Math.max(clock.now, time);
    },
  };
  const workerSettings: WorkerSettings = {
    policy: DEFAULT_RETRY_POLICY,
    outputBurndown: 5,
    leaseSeconds: 60,
    owner: 'worker-1',
    random: () => 0.5,
    reservations: new ReservationEstimator(5),
    tokensPerMinute: 1_000_000,
    countTokensAbove: 20_000,
    clock: fakeClock,
    ...options.worker,
  };
  const signal = new AbortController().signal;
  /** A batch may wait for its tokens for this long, as a worker with a 60-second timeout would. */
  const batchDeadline = () => ({ latestStart: clock.now + 30_000, signal });

  const workBatch = (messages: readonly RecordMessage[]): Promise<RecordVerdict[]> =>
    processBatch(messages, ports, workerSettings, batchDeadline());

  const work = async (message: RecordMessage): Promise<RecordVerdict> => {
    const [verdict] = await workBatch([message]);
    if (verdict === undefined) throw new Error('no verdict');
    if (verdict.kind === 'unhandled') throw verdict.error;
    return verdict;
  };

  /**
   * Runs the queue in batches of `batchSize` until it is empty, as the worker handler would: records to retry
   * come back after their delay, records waiting for quota are sent again; returns every verdict.
   */
  const drain = async (maxRounds = 50, batchSize = 10): Promise<RecordVerdict[]> => {
    const verdicts: RecordVerdict[] = [];
    for (let round = 0; round < maxRounds && queue.sent.length > 0; round += 1) {
      const batch = queue.sent.splice(0, batchSize);
      const batchVerdicts = await workBatch(batch);
      verdicts.push(...batchVerdicts);
      let delaySeconds = 0;
      batchVerdicts.forEach((verdict, index) => {
        const message = batch[index];
        if (message === undefined) return;
        if (verdict.kind === 'retry' || verdict.kind === 'unhandled') queue.sent.push(message);
        if (verdict.kind === 'wait')
          void queue.send([{ ...message, waits: (message.waits ?? 0) + 1 }], [verdict.delaySeconds]);
        if (verdict.kind === 'retry' || verdict.kind === 'wait')
          delaySeconds = Math.max(delaySeconds, verdict.delaySeconds);
      });
      clock.now += delaySeconds * 1000;
    }
    return verdicts;
  };

  const finalizeAll = async () => {
    for (const jobId of trigger.finalized.splice(0)) await finalizeJob(jobId, ports, { clock: fakeClock });
  };

  /** Uploads `body` as `key`, starts the job, runs the queue and the finalizer. */
  const run = async (key: string, body: string | Uint8Array, metadata: Record<string, string> = {}) => {
    store.putObject(BUCKET, key, body, metadata);
    const outcome: EnqueueOutcome = await startJob(objectCreated(key), ports, enqueueSettings, () => false);
    const verdicts = await drain();
    await finalizeAll();
    return { outcome, verdicts };
  };

  /** Where the newest job of `key` wrote its output and manifest. */
  const outputsOf = (key: string) => {
    const job = [...ledger.jobs.values()].filter((candidate) => candidate.source.key === key).at(-1);
    return outputLocations({ jobId: job?.jobId ?? 'no-job', source: { bucket: BUCKET, key } });
  };
  const outputLines = (key: string) =>
    (store.text(BUCKET, outputsOf(key).output.key) ?? '')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const manifest = (key: string) =>
    JSON.parse(store.text(BUCKET, outputsOf(key).manifest.key) ?? 'null') as Record<string, unknown> | null;

  return {
    clock,
    store,
    ledger,
    queue,
    events,
    trigger,
    model,
    budget,
    batchJobs,
    alarms,
    ports,
    enqueueSettings,
    workerSettings,
    work,
    workBatch,
    drain,
    finalizeAll,
    run,
    outputLines,
    manifest,
  };
}
