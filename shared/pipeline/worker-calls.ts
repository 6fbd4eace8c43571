import { withWriteTtl } from '../caching/cache-ttl.ts';
import { usageOfResponse } from '../cost/cost.ts';
import type { PipelineError } from '../errors.ts';
import { classifyFailure, decideRetry, type Failure } from '../failures.ts';
import type { MessagesResponse, RecordOutcome } from '../output/result-records.ts';
import { completionOf, readStoredResult, storeResult } from './complete.ts';
import type { JobRecord, StoredResult } from './model.ts';
import type { AcquiredLease, Batch, Call, CallOutcome, RecordVerdict } from './worker-batch.ts';

/** One record's call: its lease, Bedrock, and its result or what the failure table makes of a failure. */

/** One call: lease, Bedrock, result. Unexpected errors become an unhandled verdict, never a lost settlement. */
export async function callModel(call: Call, batch: Batch): Promise<CallOutcome> {
  const { ports, settings, tally } = batch;
  try {
    const { job, message } = call;
    const lease = await ports.ledger.leaseRecord(
      job.jobId,
      message.lineNumber,
      settings.owner,
      settings.leaseSeconds,
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
    // Only a lease holder stores a result, so only a later attempt can find one (its holder stopped before
    // counting it): adopt it instead of calling again.
    const stored =
      lease.attempt > 1 ? await readStoredResult(ports.store, job, message.lineNumber) : undefined;
    if (stored !== undefined) {
      tally.completed(job.jobId, stored.completion);
      const verdict = { kind: 'done', status: stored.outcome.status, completion: stored.completion } as const;
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
  tally.count(job.jobId, { bedrockCalls: 1 });
  let response: MessagesResponse;
  try {
    response = await ports.model.invoke(invocation.modelId, invocation.bodyJson, deadline.signal);
  } catch (error) {
    return afterFailure(call, lease, classifyFailure(error), batch);
  }
  const usage = withWriteTtl(usageOfResponse(response), call.prefixTtl);
  const model = { modelId: invocation.modelId, latencyMs: settings.clock.now() - calledAt };
  settings.reservations.learn(call.calibrationKey, invocation.estimate, usage, model.latencyMs);
  const verdict = await finish(batch, job, {
    subject,
    outcome: { status: 'succeeded', response },
    billing: { usage, resolved: invocation.resolved },
    attempts: lease.attempt,
    model,
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
    tally.count(job.jobId, { sentBackToWait: 1 });
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
    return {
      verdict: await finish(batch, job, { subject: call.subject, outcome, attempts: lease.attempt }),
      charged,
      failure,
    };
  }
  await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, { failed: failure.retry });
  tally.count(job.jobId, { retried: 1, bedrockThrottles: failure.throttle ? 1 : 0 });
  return { verdict: { kind: 'retry', delaySeconds: decision.delaySeconds, failure }, charged, failure };
}

/** Stores the record's result (or adopts the one stored first) and adds it to the batch's tally. */
export async function finish(
  batch: Batch,
  job: JobRecord,
  finished: {
    subject: StoredResult['subject'];
    outcome: RecordOutcome;
    attempts: number;
    billing?: Parameters<typeof completionOf>[3];
    model?: { modelId: string; latencyMs: number };
  },
): Promise<RecordVerdict & { kind: 'done' }> {
  const { subject, outcome, billing, model } = finished;
  const stored = await storeResult(batch.ports.store, job, {
    subject,
    outcome,
    completion: completionOf(subject.lineNumber, subject.family, outcome, billing),
    timing: {
      finishedAt: new Date(batch.settings.clock.now()).toISOString(),
      attempts: finished.attempts,
      ...model,
    },
  });
  batch.tally.completed(job.jobId, stored.completion);
  return { kind: 'done', status: stored.outcome.status, completion: stored.completion };
}

export function erroredOutcome(error: PipelineError): RecordOutcome {
  return { status: 'errored', failure: classifyFailure(error) };
}
