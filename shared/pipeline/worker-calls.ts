import { withWriteTtl } from '../caching/cache-ttl.ts';
import { resultSetLocation } from '../contract/storage-layout.ts';
import { costOfRequest, usageOfResponse } from '../cost/cost.ts';
import type { PipelineError } from '../errors.ts';
import { classifyFailure, decideRetry, type Failure } from '../failures.ts';
import type { MessagesResponse, RecordOutcome } from '../output/result-records.ts';
import { poolName } from '../quotas/pools.ts';
import { completionOf, readEarlierResult } from './complete.ts';
import type { JobRecord, StoredResult, UncountedCalls } from './model.ts';
import type { AcquiredLease, Batch, Call, CallOutcome, RecordVerdict } from './worker-batch.ts';

/** One record's call: its lease, Bedrock, and its result or what the failure table makes of a failure. */

/** One call: lease, Bedrock, result. Unexpected errors become an unhandled verdict, never a lost settlement. */
export async function callModel(call: Call, batch: Batch): Promise<CallOutcome> {
  const { ports, settings } = batch;
  try {
    const { job, message } = call;
    const lease = await ports.ledger.leaseRecord(
      job.jobId,
      message.lineNumber,
      settings.owner,
      settings.leaseSeconds,
      resultSetLocation(job, batch.setId).key,
    );
    if (lease.kind === 'held') {
      const verdict = {
        kind: 'retry',
        delaySeconds: settings.heldRetrySeconds ?? 30,
        failure: undefined,
      } as const;
      return { verdict, charged: 0 };
    }
    if (lease.kind === 'done') return { verdict: { kind: 'done', status: 'already-done' }, charged: 0 };
    // An attempt whose lease ran out may have stored the record's result before it could count it: adopt
    // that result instead of calling again.
    const earlier =
      lease.earlierSet === undefined
        ? undefined
        : await readEarlierResult(ports.store, job, lease.earlierSet, message.lineNumber);
    if (earlier !== undefined) {
      batch.tally.finished(job, earlier);
      const verdict = {
        kind: 'done',
        status: earlier.outcome.status,
        completion: earlier.completion,
      } as const;
      return { verdict, charged: 0 };
    }
    const called = await invoke(call, lease, batch);
    return { ...called, verdict: { ...called.verdict, called: true } };
  } catch (error) {
    return { verdict: { kind: 'unhandled', error }, charged: call.cost.charge };
  }
}

async function invoke(call: Call, lease: AcquiredLease, batch: Batch): Promise<CallOutcome> {
  const { ports, settings, deadline, tally } = batch;
  const { invocation, job, subject } = call;
  const calledAt = settings.clock.now();
  tally.count(job, { bedrockCalls: 1 });
  let response: MessagesResponse;
  try {
    const target = { region: invocation.resolved.region, modelId: invocation.modelId };
    response = await ports.model.invoke(target, invocation.bodyJson, deadline.signal);
  } catch (error) {
    return afterFailure(call, lease, classifyFailure(error), batch);
  }
  const usage = withWriteTtl(usageOfResponse(response), call.prefixTtl);
  const model = {
    modelId: invocation.modelId,
    region: invocation.resolved.region,
    latencyMs: settings.clock.now() - calledAt,
  };
  settings.reservations.learn(call.calibrationKey, invocation.estimate, usage, model.latencyMs);
  const verdict = finish(batch, job, {
    subject,
    outcome: { status: 'succeeded', response },
    billing: { usage, resolved: invocation.resolved },
    attempts: lease.attempt,
    model,
    uncounted: uncountedOf(call, lease, false),
  });
  const charged =
    usage.input_tokens +
    (usage.cache_creation_input_tokens ?? 0) +
    usage.output_tokens * settings.outputBurndown;
  return { verdict: { ...verdict, model }, charged };
}

/** A failed call through the failure table: wait for the daily quota, try again later, or an error result. */
async function afterFailure(
  call: Call,
  lease: AcquiredLease,
  failure: Failure,
  batch: Batch,
): Promise<CallOutcome> {
  const { ports, settings, tally } = batch;
  const { job, message } = call;
  // Bedrock charges nothing for a call it answered with an error; a call that got no answer may have run.
  const charged = failure.answered ? 0 : call.cost.charge;
  if (failure.dailyQuota) {
    await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, { waited: true });
    tally.count(job, { sentBackToWait: 1 });
    const delaySeconds = settings.policy.dailyQuotaWaitSeconds;
    return { verdict: { kind: 'wait', cause: 'daily-quota', delaySeconds }, charged, failure };
  }
  const count = { attempt: lease.attempt, ofClass: (lease.failures[failure.retry] ?? 0) + 1 };
  const decision = decideRetry(failure, count, settings.policy, settings.random);
  if (decision.action === 'give-up') {
    const suffix = failure.retry === 'never' ? '' : ` (gave up: ${decision.reason})`;
    const outcome: RecordOutcome = {
      status: 'errored',
      failure: { ...failure, message: `${failure.message}${suffix}` },
    };
    const uncounted = uncountedOf(call, lease, !failure.answered);
    return {
      verdict: finish(batch, job, { subject: call.subject, outcome, attempts: lease.attempt, uncounted }),
      charged,
      failure,
    };
  }
  // The record keeps its unanswered calls: the attempt that settles it counts them, once, with its result.
  await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, {
    failed: failure.retry,
    ...(failure.answered ? {} : { unanswered: true }),
  });
  tally.count(job, { retried: 1, bedrockThrottles: failure.throttle ? 1 : 0 });
  const verdict = {
    kind: 'retry',
    delaySeconds: decision.delaySeconds,
    failure,
    pool: call.budgetKey,
  } as const;
  return { verdict, charged, failure };
}

/** Adds the record's result to the batch's tally, for the batch's result set. */
export function finish(
  batch: Batch,
  job: JobRecord,
  finished: {
    subject: StoredResult['subject'];
    outcome: RecordOutcome;
    attempts: number;
    billing?: Parameters<typeof completionOf>[3];
    model?: { modelId: string; region: string; latencyMs: number };
    uncounted?: UncountedCalls | undefined;
  },
): RecordVerdict & { kind: 'done' } {
  const { subject, outcome, billing, model, uncounted } = finished;
  const answered = completionOf(subject.lineNumber, subject.family, outcome, billing);
  const completion = {
    ...answered,
    ...(model === undefined ? {} : { pool: poolName(model) }),
    ...(uncounted === undefined ? {} : { uncounted }),
  };
  batch.tally.finished(job, {
    subject,
    outcome,
    completion,
    timing: {
      finishedAt: new Date(batch.settings.clock.now()).toISOString(),
      attempts: finished.attempts,
      ...model,
    },
  });
  return { kind: 'done', status: outcome.status, completion };
}

/**
 * The record's calls that may have been billed with no usage counted, as its settling attempt finds them:
 * earlier attempts that got no answer, earlier attempts whose worker stopped before releasing the record (the
 * attempts before this one that did not release it), and this attempt's own call when it got no answer.
 */
function uncountedOf(call: Call, lease: AcquiredLease, unansweredNow: boolean): UncountedCalls | undefined {
  const unanswered = lease.unanswered + (unansweredNow ? 1 : 0);
  const abandoned = Math.max(0, lease.attempt - 1 - lease.releases);
  if (unanswered + abandoned === 0) return undefined;
  return { unanswered, abandoned, costCapNanoUsd: (unanswered + abandoned) * costCapNanoUsd(call) };
}

/**
 * The most Bedrock may bill for a call whose usage never came back: its input at the upper estimate, all of it
 * as an hour's cache write when the request has a breakpoint, and `max_tokens` of output.
 */
function costCapNanoUsd({ invocation }: Call): number {
  const { model, endpoint } = invocation.resolved;
  const input = invocation.estimate.upper;
  const cached = invocation.bodyJson.includes('"cache_control"');
  const usage = cached
    ? {
        input_tokens: 0,
        cache_creation_input_tokens: input,
        cache_creation: { ephemeral_1h_input_tokens: input },
        output_tokens: invocation.maxTokens,
      }
    : { input_tokens: input, output_tokens: invocation.maxTokens };
  return costOfRequest(usage, model, endpoint).total;
}

export function erroredOutcome(error: PipelineError): RecordOutcome {
  return { status: 'errored', failure: classifyFailure(error) };
}
