import { randomUUID } from 'node:crypto';
import { withSharedPrefixCached } from '../caching/breakpoint.ts';
import { type CacheTtl, freshForMs } from '../caching/cache-ttl.ts';
import { type Catalog, defaultCatalog } from '../catalog/catalog.ts';
import { InputChangedError, PipelineError } from '../errors.ts';
import { parseLine } from '../input/parse-line.ts';
import type { LineResult } from '../input/records.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import { endpointNamedBy } from '../models/resolve-model.ts';
import { type RecordOutcome, subjectOf } from '../output/result-records.ts';
import { poolName } from '../quotas/pools.ts';
import { buildInvocation, type Invocation } from '../request/build-request.ts';
import { countFinished } from './complete.ts';
import type { CountedRecord, JobRecord } from './model.ts';
import type { ModelInvoker } from './ports.ts';
import { SpendingCaps } from './spending-caps.ts';
import {
  type Batch,
  type BatchDeadline,
  BatchTally,
  type Call,
  type RecordVerdict,
  type WorkerPorts,
  type WorkerSettings,
} from './worker-batch.ts';
import { callWithin } from './worker-budget.ts';
import { erroredOutcome, finish } from './worker-calls.ts';
import { placeOnPools } from './worker-pools.ts';

/**
 * A batch of records from the queue to their verdicts. Records that need no call (done, broken, canceled)
 * finish at once. The rest reserve from the shared budget together, one reservation per budget, and start
 * in this invocation as their tokens arrive; calls the budget cannot start before the batch's deadline go
 * back to the queue with a delay, which is not a failure. Each call takes its record's lease and calls
 * Bedrock; every failure goes through the failure table. Every reservation is settled to what Bedrock
 * charged; the batch's results are stored as one result set per job, and its records and retries counted in
 * the ledger in one transaction.
 */
export async function processBatch(
  messages: readonly RecordMessage[],
  ports: WorkerPorts,
  settings: WorkerSettings,
  deadline: BatchDeadline,
): Promise<RecordVerdict[]> {
  const batch: Batch = {
    ports,
    settings,
    deadline,
    tally: new BatchTally(),
    caps: new SpendingCaps(ports.ledger, settings),
    size: messages.length,
    setId: randomUUID(),
  };
  const jobOf = oncePerJob((jobId) => ports.ledger.getJob(jobId));
  // One read per job says which of the batch's records a redelivery or a racing attempt finished already.
  const doneIn = oncePerJob((jobId) =>
    ports.ledger.doneRecords(
      jobId,
      messages.filter((message) => message.jobId === jobId).map((message) => message.lineNumber),
    ),
  );
  const verdicts = new Map<RecordMessage, RecordVerdict>();
  const calls: Call[] = [];
  await Promise.all(
    messages.map(async (message) => {
      try {
        const job = await jobOf(message.jobId);
        const isDone = job !== undefined && (await doneIn(job.jobId)).has(message.lineNumber);
        const prepared = await prepare(message, job, isDone, batch);
        if ('verdict' in prepared) verdicts.set(message, prepared.verdict);
        else calls.push(prepared.call);
      } catch (error) {
        verdicts.set(message, { kind: 'unhandled', error });
      }
    }),
  );
  const calling = sharedPatiently(calls, batch);
  const { writers, waiting, free } = await arrangePrefixWrites(calls, calling);
  for (const call of waiting) verdicts.set(call.message, prefixWait(call, calling));
  // Each shared prefix is written by one call before the calls that read it start.
  for (const [call, verdict] of await callAll(writers, calling)) {
    verdicts.set(call.message, verdict);
    if (verdict.kind === 'done' && verdict.status === 'succeeded')
      await ports.ledger.markPrefixWritten(call.job.jobId, call.invocation.modelId, settings.clock.now());
  }
  for (const [call, verdict] of await callAll(free, calling)) verdicts.set(call.message, verdict);
  const counted = await countFinished(ports, batch.tally.perJob(), batch.setId);
  return messages.map((message) => counting(verdicts.get(message), message, counted));
}

/**
 * How long a call of a batch that mixes models or jobs may wait here for its tokens. The batch's results are
 * counted together at its end: a record waiting minutes for its own model's tokens (a long document under a
 * small quota) would hold back the results of the others, which have tokens of their own.
 */
export const MIXED_BATCH_WAIT_MS = 15_000;

/**
 * The batch its calls run in: as it is when they share one model of one job; when they mix models or jobs,
 * with a latest start `MIXED_BATCH_WAIT_MS` away, so calls whose tokens come later go back to the queue to
 * wait for them (without spending an attempt) and the others finish now.
 */
function sharedPatiently(calls: readonly Call[], batch: Batch): Batch {
  const groups = new Set(
    calls.map((call) => `${call.job.jobId}#${call.invocation.resolved.model.bedrockId}`),
  );
  if (groups.size <= 1) return batch;
  const latestStart = Math.min(batch.deadline.latestStart, batch.settings.clock.now() + MIXED_BATCH_WAIT_MS);
  return { ...batch, deadline: { ...batch.deadline, latestStart } };
}

/** A read made once per job of the batch, however many of its records ask. */
function oncePerJob<Value>(read: (jobId: string) => Promise<Value>): (jobId: string) => Promise<Value> {
  const reads = new Map<string, Promise<Value>>();
  return (jobId) => {
    const known = reads.get(jobId) ?? read(jobId);
    reads.set(jobId, known);
    return known;
  };
}

/**
 * Calls placed on their quota pools (see placeOnPools), each pool's calls reserving once; calls a pool cannot
 * start before another could are placed again on the pools not tried yet.
 */
async function callAll(
  calls: readonly Call[],
  batch: Batch,
  tried: ReadonlySet<string> = new Set(),
): Promise<Array<[Call, RecordVerdict]>> {
  const placements = await placeOnPools(calls, batch, tried);
  const results = await Promise.all(
    placements.map(({ budgetKey, calls: placed, startBy }) =>
      callWithin(
        budgetKey,
        placed,
        batch,
        startBy === undefined
          ? undefined
          : { startBy, call: (rest) => callAll(rest, batch, new Set([...tried, budgetKey])) },
      ),
    ),
  );
  return results.flat();
}

/** How long a record waits while another worker writes the prefix it would read. */
const PREFIX_WAIT_SECONDS = 3;
/** A writer that has not written in this long has stopped: another may take the write over. */
const DEFAULT_PREFIX_CLAIM_MS = 60_000;

/**
 * The calls that carry a shared prefix, per job and model: while no fresh write stands, one of them writes
 * it first (the ledger says which worker), the others of this batch follow it, and those of other workers
 * wait a few seconds for it. Every other call is free to start.
 */
async function arrangePrefixWrites(
  calls: readonly Call[],
  batch: Batch,
): Promise<{ writers: Call[]; waiting: Call[]; free: Call[] }> {
  const { ports, settings } = batch;
  const now = settings.clock.now();
  const writers: Call[] = [];
  const waiting: Call[] = [];
  const free: Call[] = [];
  const groups = new Map<string, Call[]>();
  for (const call of calls) {
    const writtenAt = call.job.prefixWrites[call.invocation.modelId]?.writtenAt;
    if (
      call.prefixTtl === undefined ||
      (writtenAt !== undefined && writtenAt >= now - freshForMs(call.prefixTtl))
    )
      free.push(call);
    else {
      const key = `${call.job.jobId}#${call.invocation.modelId}`;
      groups.set(key, [...(groups.get(key) ?? []), call]);
    }
  }
  for (const [first, ...rest] of groups.values()) {
    if (first === undefined) continue;
    const claim = await ports.ledger.claimPrefixWrite(first.job.jobId, first.invocation.modelId, {
      owner: settings.owner,
      until: now + (settings.prefixClaimMs ?? DEFAULT_PREFIX_CLAIM_MS),
      freshAfter: now - freshForMs(first.prefixTtl ?? '5m'),
      now,
    });
    if (claim === 'busy') waiting.push(first, ...rest);
    else if (claim === 'written') free.push(first, ...rest);
    else {
      writers.push(writing(first, batch));
      free.push(...rest);
    }
  }
  return { writers, waiting, free };
}

/** The call that writes its prefix to the cache: charged for all of its input, as it reads none of it. */
function writing(call: Call, batch: Batch): Call {
  const { reservations } = batch.settings;
  const { calibrationKey, inputTokens, invocation } = call;
  return {
    ...call,
    cost: reservations.costOf(calibrationKey, inputTokens, invocation.maxTokens, batch.size),
  };
}

function prefixWait(call: Call, batch: Batch): RecordVerdict {
  batch.tally.count(call.job, { sentBackToWait: 1 });
  return { kind: 'wait', cause: 'prefix', delaySeconds: PREFIX_WAIT_SECONDS };
}

/** Reads the record and decides what it needs: nothing (done), a result without a call, or a call. */
async function prepare(
  message: RecordMessage,
  job: JobRecord | undefined,
  isDone: boolean,
  batch: Batch,
): Promise<{ verdict: RecordVerdict } | { call: Call }> {
  const { ports, settings } = batch;
  if (job === undefined) throw new PipelineError('UNKNOWN_JOB', `No job ${message.jobId} in the ledger.`);
  batch.tally.count(job, { receives: 1 });
  if (isDone) return { verdict: { kind: 'done', status: 'already-done' } };
  const catalog = settings.catalog ?? defaultCatalog;
  let record: LineResult;
  try {
    record = await readRecord(message, ports, catalog);
  } catch (error) {
    if (!(error instanceof InputChangedError)) throw error;
    const subject = { recordId: message.recordId, lineNumber: message.lineNumber, family: undefined };
    return { verdict: finish(batch, job, { subject, outcome: erroredOutcome(error), attempts: 0 }) };
  }
  const subject = record.ok
    ? subjectOf(record.record)
    : { recordId: message.recordId, lineNumber: message.lineNumber, family: record.error.family };
  const finishNow = (outcome: RecordOutcome) => ({
    verdict: finish(batch, job, { subject, outcome, attempts: 0 }),
  });
  if (job.cancelRequested || (await batch.caps.stop(job))) return finishNow({ status: 'canceled' });
  if (!record.ok)
    return finishNow(erroredOutcome(new PipelineError(record.error.code, record.error.message)));
  let invocation: Invocation & { readonly prefixTtl?: CacheTtl };
  try {
    const built = buildInvocation(record.record, job.settings, catalog);
    invocation = withSharedPrefixCached(built, job.sharedPrefixes?.[built.modelId]);
  } catch (error) {
    if (error instanceof PipelineError) return finishNow(erroredOutcome(error));
    throw error;
  }
  const calibrationKey = `${job.jobId}#${invocation.modelId}`;
  const counted =
    invocation.estimate.upper > settings.countTokensAbove || invocation.longContext
      ? await countInput(ports.model, invocation, batch.deadline.signal)
      : undefined;
  const input = settings.reservations.inputTokens(calibrationKey, invocation.estimate, counted);
  const { prefixTtl } = invocation;
  return {
    call: {
      message,
      job,
      subject,
      invocation,
      budgetKey: poolName({ region: invocation.resolved.region, modelId: invocation.modelId }),
      pinned:
        record.record.modelOverride !== undefined &&
        endpointNamedBy(record.record.modelOverride) !== undefined,
      calibrationKey,
      inputTokens: input,
      cost: settings.reservations.costOf(
        calibrationKey,
        input,
        invocation.maxTokens,
        batch.size,
        prefixTtl !== undefined,
      ),
      ...(prefixTtl === undefined ? {} : { prefixTtl }),
    },
  };
}

/** A done verdict for a record the ledger did not count (a redelivery counted it first) says so. */
function counting(
  verdict: RecordVerdict | undefined,
  message: RecordMessage,
  counted: readonly CountedRecord[],
): RecordVerdict {
  if (verdict === undefined) return { kind: 'unhandled', error: new Error('the record got no verdict') };
  if (verdict.kind !== 'done' || verdict.completion === undefined) return verdict;
  const wasCounted = counted.some(
    (record) => record.jobId === message.jobId && record.lineNumber === message.lineNumber,
  );
  return wasCounted ? verdict : { kind: 'done', status: 'already-done' };
}

/** The input tokens Bedrock will count, asked of CountTokens; unknown when it cannot say (estimates then do). */
async function countInput(model: ModelInvoker, invocation: Invocation, signal: AbortSignal) {
  try {
    const { region, model: foundation } = invocation.resolved;
    return await model.countTokens({ region, modelId: foundation.bedrockId }, invocation.bodyJson, signal);
  } catch {
    return undefined;
  }
}

/** The line the message carries, or else the line again by its byte range, from the same object version. */
async function readRecord(message: RecordMessage, ports: WorkerPorts, catalog: Catalog): Promise<LineResult> {
  const { source, lineNumber, line } = message;
  const bytes =
    line === undefined
      ? await ports.store.readRange(source, source.byteStart, source.byteEnd)
      : Buffer.from(line, 'utf8');
  return parseLine(bytes, lineNumber, catalog.requestBodyLimitBytes);
}
