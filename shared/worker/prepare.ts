import { withSharedPrefixCached } from '../caching/breakpoint.ts';
import type { CacheTtl } from '../caching/cache-ttl.ts';
import { type Catalog, catalogInUse, pricesAt } from '../catalog/catalog.ts';
import { DEFAULT_SERVICE_TIER, type ServiceTier, tierRefusalKey } from '../contract/service-tiers.ts';
import type { JobRecord } from '../core/model.ts';
import type { ModelInvoker } from '../core/ports.ts';
import { InputChangedError, PipelineError } from '../errors.ts';
import { parseLine } from '../input/parse-line.ts';
import type { LineResult } from '../input/records.ts';
import type { RecordMessage } from '../messages/record-message.ts';
import { endpointNamedBy } from '../models/resolve-model.ts';
import { type RecordOutcome, subjectOf } from '../output/result-records.ts';
import { poolName } from '../quotas/pools.ts';
import { buildInvocation, type Invocation } from '../request/build-request.ts';
import type { Batch, Call, RecordVerdict, WorkerPorts } from './batch.ts';
import { erroredOutcome, finished } from './verdicts.ts';

/** The prepare stage: each message read and decided, to a verdict without a call or to a call to make. */

/** A message prepared: its job (when the ledger knows it) and its verdict, or the call it needs. */
type Prepared = { readonly message: RecordMessage; readonly job: JobRecord | undefined } & (
  | { readonly verdict: RecordVerdict }
  | { readonly call: Call }
);

/**
 * Every message of the batch prepared at once. Records that need no call (done before, broken, canceled)
 * get their verdict here; the others a call with its body and what it costs the quota.
 */
export async function prepare(messages: readonly RecordMessage[], batch: Batch): Promise<Prepared[]> {
  const { ledger } = batch.ports;
  const jobOf = oncePerJob((jobId) => ledger.getJob(jobId));
  // One read per job says which of the batch's records a redelivery or a racing attempt finished already.
  const doneIn = oncePerJob((jobId) =>
    ledger.doneRecords(
      jobId,
      messages.filter((message) => message.jobId === jobId).map((message) => message.lineNumber),
    ),
  );
  return Promise.all(
    messages.map(async (message): Promise<Prepared> => {
      let job: JobRecord | undefined;
      try {
        // Both reads at once: the first call of a job waits on them.
        const [found, done] = await Promise.all([jobOf(message.jobId), doneIn(message.jobId)]);
        job = found;
        if (job === undefined)
          throw new PipelineError('UNKNOWN_JOB', `No job ${message.jobId} in the ledger.`);
        if (done.has(message.lineNumber))
          return { message, job, verdict: { kind: 'done', status: 'already-done' } };
        return { message, job, ...(await prepareRecord(message, job, batch)) };
      } catch (error) {
        return { message, job, verdict: { kind: 'unhandled', error } };
      }
    }),
  );
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

/** Reads the record and decides what it needs: a result without a call, or a call. */
async function prepareRecord(
  message: RecordMessage,
  job: JobRecord,
  batch: Batch,
): Promise<{ verdict: RecordVerdict } | { call: Call }> {
  const { ports, settings } = batch;
  const catalog = settings.catalog ?? catalogInUse();
  let record: LineResult;
  try {
    record = await readRecord(message, ports, catalog);
  } catch (error) {
    if (!(error instanceof InputChangedError)) throw error;
    const subject = { recordId: message.recordId, lineNumber: message.lineNumber, family: undefined };
    return { verdict: finished(batch, { subject, outcome: erroredOutcome(error), attempts: 0 }) };
  }
  const subject = record.ok
    ? subjectOf(record.record)
    : { recordId: message.recordId, lineNumber: message.lineNumber, family: record.error.family };
  const finishNow = (outcome: RecordOutcome) => ({
    verdict: finished(batch, { subject, outcome, attempts: 0 }),
  });
  if (job.cancelRequested || (await batch.caps.stop(job))) return finishNow({ status: 'canceled' });
  if (job.settings.expiresAt !== undefined && settings.clock.now() >= Date.parse(job.settings.expiresAt))
    return finishNow({ status: 'expired' });
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
  const tier = tierToAsk(job, invocation);
  const unknownCost = costUnknownUnderCap(invocation, tier, batch.caps.capsOn(job));
  if (unknownCost !== undefined) return finishNow(erroredOutcome(unknownCost));
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
      tier,
    },
  };
}

/** A call with no known price cannot be held to a spending cap: the record's error, when one holds. */
function costUnknownUnderCap(
  invocation: Invocation,
  tier: ServiceTier,
  caps: string | undefined,
): PipelineError | undefined {
  const { model } = invocation.resolved;
  if (pricesAt(model, tier).standard !== undefined || caps === undefined) return undefined;
  const what = tier === DEFAULT_SERVICE_TIER ? model.displayName : `${model.displayName} at the ${tier} tier`;
  return new PipelineError(
    'COST_UNKNOWN',
    `${what} has no price in the catalog, so a call to it cannot be held to ${caps}.`,
    { fix: 'Add its price to the catalog, or run the record without a spending cap.' },
  );
}

/** The job's tier, or default once Bedrock has refused the job's tier for the model. */
function tierToAsk(job: JobRecord, invocation: Invocation): ServiceTier {
  const refused = job.tierRefusals.includes(tierRefusalKey(invocation.modelId, invocation.tier));
  return refused ? DEFAULT_SERVICE_TIER : invocation.tier;
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
