import { setTimeout as sleep } from 'node:timers/promises';
import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { Context, EventBridgeEvent } from 'aws-lambda';
import { DynamoDbTokenBudget } from '../../functions/adapters/dynamodb-budget.ts';
import { DynamoDbLedger } from '../../functions/adapters/dynamodb-ledger.ts';
import { createBatchHandler } from '../../functions/batch/handler.ts';
import { createEnqueueHandler } from '../../functions/enqueue/handler.ts';
import { createFinalizerHandler } from '../../functions/finalizer/handler.ts';
import { type FunctionPorts, functionPorts } from '../../functions/function-ports.ts';
import { observability } from '../../functions/observability.ts';
import { createWorkerHandler } from '../../functions/worker/handler.ts';
import { sweepBatchParts, type WatchPorts } from '../../shared/batch/watch.ts';
import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';
import type { TypicalRecord } from '../../shared/budget/throughput.ts';
import { visibilityTimeoutFor, type WorkerShape, workerShapeFor } from '../../shared/budget/worker-shape.ts';
import { catalogInUse, DEFAULT_MODEL } from '../../shared/catalog/catalog.ts';
import { COUNT_TOKENS_ABOVE, OUTPUT_TOKEN_BURNDOWN, RESUME_AFTER_MINUTES } from '../../shared/config.ts';
import { ENQUEUE_CONTINUATION, EVENT_SOURCE, JOB_ENDINGS } from '../../shared/contract/job-events.ts';
import { systemClock } from '../../shared/core/clock.ts';
import type { JobSettings } from '../../shared/core/model.ts';
import {
  BATCH_JOB_STATE_CHANGE,
  BEDROCK_EVENT_SOURCE,
  batchJobStateChangePattern,
} from '../../shared/events/batch-job-change.ts';
import { inputObjectCreatedPattern } from '../../shared/events/patterns.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../shared/failures.ts';
import { type SweepPorts, sweepStuckJobs } from '../../shared/pipeline/sweeper.ts';
import { budgetRatesOf, ConfiguredQuotas } from '../../shared/quotas/pool-rates.ts';
import type { QuotaReading } from '../../shared/quotas/service-quotas.ts';
import { STAND_IN_TOKENS_PER_MINUTE } from '../bedrock/stand-in.ts';
import type { Chaos } from '../chaos/chaos.ts';
import type { LocalCloud } from '../cloud/local-cloud.ts';
import { type BusEvent, EventBridgeShim } from '../glue/eventbridge-shim.ts';
import { invokeWithTimeout } from '../glue/lambda-context.ts';
import { SqsPoller } from '../glue/sqs-poller.ts';
import { MeteredBudget } from './metered-budget.ts';
import { type PipelineResources, provisionPipeline } from './provision.ts';

export interface LocalPipelineOptions {
  readonly defaults?: Partial<JobSettings>;
  /** The quota the budget spends in a pool without its own in `quotas`. */
  readonly tokensPerMinute?: number;
  /**
   * Each pool's quotas as read (or given), with the pools left out: the budget spends each pool's usable
   * quotas and places nothing on a pool left out, the manifest reports them, and the workers are sized for
   * all of them together.
   */
  readonly quotas?: QuotaReading;
  readonly retryPolicy?: Partial<RetryPolicy>;
  /** The daily spending cap (UTC days), as the stack's maxDailyCost: none unless given. */
  readonly maxDailyCostUsd?: number;
  /**
   * The worker's invocations at once, batch, timeout and lease: derived from the quota as the stack derives
   * them (shared/pipeline/worker-shape.ts), but for what is given here.
   */
  readonly worker?: Partial<Omit<WorkerShape, 'visibilityTimeoutSeconds'>>;
  /** A record as the quota sees it, to size the worker: the stack's default unless given. */
  readonly typicalRecord?: TypicalRecord;
  readonly enqueueTimeoutMs?: number;
  /** How long before its deadline the enqueue function hands the rest of a file to a new invocation. */
  readonly enqueueStopBeforeDeadlineMs?: number;
  readonly enqueueChunkLines?: number;
  /** Bytes of output per multipart part (5 MiB at least, as S3 takes): the finalizer's default unless given. */
  readonly finalizePartBytes?: number;
  /**
   * For tests of crashes: how soon a message an invocation held comes back, on both queues, in place of six
   * times the consumer's timeout (which nothing a user runs changes).
   */
  readonly redeliverAfterSeconds?: number;
  /**
   * For tests of crashes: how long a claim to publish a job's event holds when its step died, in place of
   * the stack's half minute.
   */
  readonly announceLeaseSeconds?: number;
  readonly prefix?: string;
  /** The Bedrock clients the workers call, per source region: the local cloud's stand-in unless given (real Bedrock, say). */
  readonly bedrockIn?: (region: string) => BedrockRuntimeClient;
  /** Faults around the functions: crashes at every step, duplicate events and deliveries, failed PutEvents. */
  readonly chaos?: Chaos;
  /** The scheduled sweeper, which takes up steps that stopped; off unless given. */
  readonly sweep?: { readonly intervalMs: number; readonly resumeAfterMinutes: number };
  /** How long an enqueue reader holds a file without progress, and a held record waits to be tried again. */
  readonly readingLeaseSeconds?: number;
  readonly heldRetrySeconds?: number;
  /** For tests of crashes: how soon a dead writer's claim on a shared prefix's cache write may be taken over. */
  readonly prefixClaimMs?: number;
  /** Receives before a message goes to its DLQ. */
  readonly maxReceiveCount?: number;
  /** Attempts EventBridge makes to deliver an event to the enqueue function, and the pause between them. */
  readonly eventAttempts?: number;
  readonly eventRetryDelayMs?: number;
  /** Invocation failures are expected (a chaos run): count them without printing each. */
  readonly quietFailures?: boolean;
}

export interface LocalPipeline {
  readonly resources: PipelineResources;
  /** The worker's shape this pipeline runs with. */
  readonly worker: WorkerShape;
  /** What the workers reserved from the shared budget and what Bedrock charged against it. */
  readonly budget: MeteredBudget;
  readonly shim: EventBridgeShim;
  readonly ledger: DynamoDbLedger;
  readonly workerPoller: SqsPoller;
  /** Resolves with the job's completion event once the bus has one for `inputKey`. */
  completion(inputKey: string, timeoutMs?: number): Promise<BusEvent>;
  stop(): Promise<void>;
}

/** The finalizer's timeout, as the stack gives it (Lambda's longest). */
const FINALIZER_TIMEOUT_MS = 900_000;

/** The worker's shape from the quota, as the stack derives it, with a test's overrides. */
function localWorkerShape(options: LocalPipelineOptions, tokensPerMinute: number): WorkerShape {
  const derived = workerShapeFor({
    tokensPerMinute,
    ...(options.typicalRecord === undefined ? {} : { typicalRecord: options.typicalRecord }),
    ...(options.worker?.timeoutSeconds === undefined
      ? {}
      : { timeoutSeconds: options.worker.timeoutSeconds }),
    ...(options.worker?.batchSize === undefined ? {} : { batchSize: options.worker.batchSize }),
  });
  return {
    ...derived,
    ...options.worker,
    visibilityTimeoutSeconds: options.redeliverAfterSeconds ?? derived.visibilityTimeoutSeconds,
  };
}

/**
 * What a local run uses where a file says nothing: the default model on the global endpoint, 1,024 tokens,
 * called from the given source regions (the home region first).
 */
export function localJobDefaults(regions: readonly string[]): JobSettings {
  const [region = 'us-west-2'] = regions;
  return {
    model: DEFAULT_MODEL,
    region,
    ...(regions.length > 1 ? { regions } : {}),
    endpoint: 'global',
    defaultMaxTokens: 1024,
  };
}

/**
 * The whole pipeline on the local cloud: the resources the stack would create, the functions built from the
 * same handler factories as on Lambda, the EventBridge rules and the SQS event sources.
 */
export async function startLocalPipeline(
  cloud: LocalCloud,
  options: LocalPipelineOptions = {},
): Promise<LocalPipeline> {
  // The budget spends what the local stand-in allows unless told otherwise.
  const tokensPerMinute = options.tokensPerMinute ?? STAND_IN_TOKENS_PER_MINUTE;
  const pooled = (options.quotas?.quotas ?? []).map((quota) => quota.usableTokensPerMinute);
  const worker = localWorkerShape(
    options,
    pooled.length === 0 ? tokensPerMinute : pooled.reduce((sum, quota) => sum + quota, 0),
  );
  const resources = await provisionPipeline(cloud.clients, {
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    recordVisibilitySeconds: worker.visibilityTimeoutSeconds,
    finalizeVisibilitySeconds:
      options.redeliverAfterSeconds ?? visibilityTimeoutFor(FINALIZER_TIMEOUT_MS / 1000),
    ...(options.maxReceiveCount === undefined ? {} : { maxReceiveCount: options.maxReceiveCount }),
  });
  const shim = busFor(cloud, resources, options);
  const budget = new MeteredBudget(
    new DynamoDbTokenBudget(cloud.clients.documents, resources.tableName, {
      tokensPerMinute,
      ...(options.quotas === undefined ? {} : budgetRatesOf(options.quotas)),
    }),
  );
  const { chaos } = options;
  const ports = functionPorts({
    clients: cloud.clients,
    putEvent: async (event) => {
      chaos?.publishOrFail();
      shim.putEvent(event);
    },
    batchRoleArn: LOCAL_BATCH_ROLE_ARN,
    countsDailySpend: options.maxDailyCostUsd !== undefined,
    // Under chaos a function may die just before or just after each of its calls.
    ...(chaos === undefined
      ? {}
      : { seenBy: (name, portName, port) => chaos.crashing(name, portName, port) }),
  });
  let ending = false;
  const run = { cloud, resources, options, ports, ending: () => ending };
  addEnqueueRules(shim, run);
  const batch = watchBatchJobs(shim, run);
  const pollers = startPollers(run, budget, { tokensPerMinute, worker });
  const sweeping =
    options.sweep === undefined
      ? undefined
      : sweepEvery(options.sweep, ports.sweeper(resources), ports.batch(resources), options);
  return {
    resources,
    worker,
    budget,
    shim,
    ledger: new DynamoDbLedger(cloud.clients.documents, resources.tableName),
    workerPoller: pollers.worker,
    completion: (inputKey, timeoutMs) =>
      completionOn(shim, `s3://${resources.bucket}/${inputKey}`, timeoutMs),
    stop: async () => {
      // Nothing new starts; a file still being read is left where its reader saves it, at once.
      ending = true;
      shim.close();
      await batch.stop();
      await sweeping?.stop();
      await Promise.all([pollers.worker.stop(), pollers.finalizer.stop()]);
      await shim.idle();
    },
  };
}

/** The service role local batch jobs name; the stand-in checks its form, as Bedrock checks the role exists. */
export const LOCAL_BATCH_ROLE_ARN = 'arn:aws:iam::000000000000:role/bedrock-batch-local';

/**
 * The batch watcher behind the stack's rule for Bedrock's batch job state changes, which the stand-in
 * announces on the bus as Bedrock does, and behind its deadline alarm queue. Stopped with the pipeline.
 */
function watchBatchJobs(
  shim: EventBridgeShim,
  { cloud, resources, ports, options }: LocalRun,
): { stop(): Promise<void> } {
  let stopped = false;
  const handler = createBatchHandler({
    ...observability('batch'),
    ports: ports.batch(resources),
    settings: { catalog: catalogInUse() },
  });
  shim.addRule({
    name: 'batch-job-state-change',
    eventPattern: batchJobStateChangePattern,
    target: (event: BusEvent) =>
      invokeWithTimeout('batch', 900_000, (context: Context) =>
        handler(event as EventBridgeEvent<string, unknown>, context),
      ),
  });
  cloud.bedrock.onBatchJobChange((detail) => {
    if (!stopped) shim.putEvent({ source: BEDROCK_EVENT_SOURCE, detailType: BATCH_JOB_STATE_CHANGE, detail });
  });
  const alarms = new SqsPoller({
    sqs: cloud.clients.sqs,
    region: cloud.region,
    queueUrl: resources.deadlineQueueUrl,
    queueArn: resources.deadlineQueueArn,
    functionName: 'batch',
    handler: async (event, context) => {
      await handler(event, context);
      return { batchItemFailures: [] };
    },
    batchSize: 1,
    maxConcurrency: 1,
    timeoutMs: 900_000,
    ...(options.quietFailures === true ? { quiet: true } : {}),
  });
  alarms.start();
  return {
    stop: async () => {
      stopped = true;
      await alarms.stop();
    },
  };
}

/** What the functions of one local pipeline are built from. */
interface LocalRun {
  readonly cloud: LocalCloud;
  readonly resources: PipelineResources;
  readonly options: LocalPipelineOptions;
  readonly ports: FunctionPorts;
  /** True once the pipeline is stopping: invocations under way have no time left and stop at their next step. */
  readonly ending: () => boolean;
}

/** The bus with S3's events from the pipeline's bucket, as the bucket's EventBridge setting delivers them. */
function busFor(
  cloud: LocalCloud,
  resources: PipelineResources,
  options: LocalPipelineOptions,
): EventBridgeShim {
  const { chaos } = options;
  const shim = new EventBridgeShim({
    region: cloud.region,
    s3: cloud.emulationS3,
    objectCreated: cloud.objectCreated,
    ...(options.eventAttempts === undefined ? {} : { attempts: options.eventAttempts }),
    ...(options.eventRetryDelayMs === undefined ? {} : { retryDelayMs: options.eventRetryDelayMs }),
    ...(chaos === undefined ? {} : { duplicateEvent: () => chaos.duplicateEvent() }),
  });
  shim.enableBucket(resources.bucket);
  return shim;
}

/** The enqueue function behind the stack's two rules: an upload under inputs/, and a continuation. */
function addEnqueueRules(
  shim: EventBridgeShim,
  { cloud, resources, options, ports, ending }: LocalRun,
): void {
  const enqueue = createEnqueueHandler({
    ...observability('enqueue'),
    ports: ports.enqueue(resources),
    settings: {
      defaults: { ...localJobDefaults(cloud.bedrock.regions), ...options.defaults },
      maxLineBytes: catalogInUse().requestBodyLimitBytes,
      tokensPerMinute: options.tokensPerMinute ?? STAND_IN_TOKENS_PER_MINUTE,
      ...(options.enqueueChunkLines === undefined ? {} : { chunkLines: options.enqueueChunkLines }),
      ...(options.readingLeaseSeconds === undefined
        ? {}
        : { readingLeaseSeconds: options.readingLeaseSeconds }),
    },
    stopBeforeDeadlineMs: options.enqueueStopBeforeDeadlineMs ?? 60_000,
  });
  const enqueueTimeoutMs = options.enqueueTimeoutMs ?? 900_000;
  const target = (event: BusEvent) =>
    invokeWithTimeout(
      'enqueue',
      enqueueTimeoutMs,
      (context: Context) => enqueue(event as EventBridgeEvent<string, unknown>, context),
      ending,
    );
  shim.addRule({ name: 'start-job', eventPattern: inputObjectCreatedPattern(resources.bucket), target });
  shim.addRule({
    name: 'continue-enqueue',
    eventPattern: { source: [EVENT_SOURCE], 'detail-type': [ENQUEUE_CONTINUATION] },
    target,
  });
}

/** The two SQS event sources, started: the record queue feeds the worker, the finalize queue the finalizer. */
function startPollers(
  { cloud, resources, options, ports }: LocalRun,
  budget: MeteredBudget,
  { tokensPerMinute, worker: shape }: { tokensPerMinute: number; worker: WorkerShape },
): { worker: SqsPoller; finalizer: SqsPoller } {
  const worker = createWorkerHandler({
    ...observability('worker'),
    ports: ports.worker(resources, budget, options.bedrockIn ?? cloud.clients.bedrockIn),
    settings: {
      policy: { ...DEFAULT_RETRY_POLICY, ...options.retryPolicy },
      outputBurndown: OUTPUT_TOKEN_BURNDOWN,
      leaseSeconds: shape.leaseSeconds,
      reservations: new ReservationEstimator(OUTPUT_TOKEN_BURNDOWN),
      tokensPerMinute,
      countTokensAbove: COUNT_TOKENS_ABOVE,
      clock: systemClock,
      ...(options.heldRetrySeconds === undefined ? {} : { heldRetrySeconds: options.heldRetrySeconds }),
      ...(options.prefixClaimMs === undefined ? {} : { prefixClaimMs: options.prefixClaimMs }),
      ...(options.maxDailyCostUsd === undefined ? {} : { maxDailyCostUsd: options.maxDailyCostUsd }),
    },
  });
  const finalizer = createFinalizerHandler({
    ...observability('finalizer'),
    ports: ports.finalizer(
      resources,
      options.quotas === undefined ? undefined : new ConfiguredQuotas(options.quotas),
    ),
    ...(options.finalizePartBytes === undefined ? {} : { partBytes: options.finalizePartBytes }),
    ...(options.announceLeaseSeconds === undefined
      ? {}
      : { announceLeaseSeconds: options.announceLeaseSeconds }),
  });
  const { chaos } = options;
  const shared = {
    sqs: cloud.clients.sqs,
    region: cloud.region,
    ...(chaos === undefined ? {} : { duplicateDelivery: () => chaos.duplicateDelivery() }),
    ...(options.quietFailures === true ? { quiet: true } : {}),
  };
  const pollers = {
    worker: new SqsPoller({
      ...shared,
      queueUrl: resources.recordQueueUrl,
      queueArn: resources.recordQueueArn,
      functionName: 'worker',
      handler: (event, context) => worker(event, context),
      batchSize: shape.batchSize,
      batchingWindowMs: shape.batchingWindowSeconds * 1000,
      maxConcurrency: shape.concurrency,
      timeoutMs: shape.timeoutSeconds * 1000,
    }),
    finalizer: new SqsPoller({
      ...shared,
      queueUrl: resources.finalizeQueueUrl,
      queueArn: resources.finalizeQueueArn,
      functionName: 'finalizer',
      handler: async (event, context) => {
        await finalizer(event, context);
        return { batchItemFailures: [] };
      },
      batchSize: 1,
      maxConcurrency: 1,
      timeoutMs: FINALIZER_TIMEOUT_MS,
    }),
  };
  pollers.worker.start();
  pollers.finalizer.start();
  return pollers;
}

/** The event that ends the job of this input (completed, canceled, superseded or failed), once the bus has one. */
async function completionOn(shim: EventBridgeShim, input: string, timeoutMs = 60_000): Promise<BusEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = shim.events.find(
      (event) =>
        event.source === EVENT_SOURCE &&
        (event.detail as { input?: string }).input === input &&
        JOB_ENDINGS.includes(event['detail-type']),
    );
    if (done !== undefined) return done;
    if (Date.now() > deadline) throw new Error(`no completion event for ${input} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * The sweep `run` and `local up` keep: every second, so a batch-lane deadline is kept to the second and a
 * stopped step is taken up after the stack's wait.
 */
export const LOCAL_SWEEP = { intervalMs: 1_000, resumeAfterMinutes: RESUME_AFTER_MINUTES } as const;

/** The schedule rule's sweeper, locally: a sweep every `intervalMs` until stopped. */
function sweepEvery(
  sweep: NonNullable<LocalPipelineOptions['sweep']>,
  ports: SweepPorts,
  batchPorts: WatchPorts,
  options: Pick<LocalPipelineOptions, 'quietFailures' | 'announceLeaseSeconds'>,
): { stop(): Promise<void> } {
  const stopping = new AbortController();
  // A failed sweep is taken up by the next; a run that expects failures (chaos) does not print each.
  const failed = (what: string) => (error: unknown) => {
    if (options.quietFailures !== true) console.error(`${what}: a sweep failed`, error);
  };
  const leases =
    options.announceLeaseSeconds === undefined ? {} : { announceLeaseSeconds: options.announceLeaseSeconds };
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      // Stopping ends the wait at once: a run's end is not held up by its sweeper.
      await sleep(sweep.intervalMs, undefined, { signal: stopping.signal }).catch(() => {});
      if (stopping.signal.aborted) break;
      await sweepStuckJobs(ports, {
        resumeAfterMinutes: sweep.resumeAfterMinutes,
        stuckAfterMinutes: Number.POSITIVE_INFINITY,
        now: new Date(),
        ...leases,
      }).catch(failed('sweeper'));
      await sweepBatchParts(batchPorts, { catalog: catalogInUse(), clock: systemClock }).catch(
        failed('batch watcher'),
      );
    }
  })();
  return {
    stop: async () => {
      stopping.abort();
      await loop;
    },
  };
}
