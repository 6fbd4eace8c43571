import { withWriteTtl } from '../caching/cache-ttl.ts';
import { DEFAULT_SERVICE_TIER, type ServiceTier } from '../contract/service-tiers.ts';
import { resultSetLocation } from '../contract/storage-layout.ts';
import type { UncountedCalls } from '../core/model.ts';
import type { ModelAnswer } from '../core/ports.ts';
import { costOfRequest, usageOfResponse } from '../cost/cost.ts';
import { classifyFailure, decideRetry, type Failure } from '../failures.ts';
import type { RecordOutcome } from '../output/result-records.ts';
import { readEarlierResult } from '../pipeline/complete.ts';
import type { AcquiredLease, Batch, Call, CallOutcome } from './batch.ts';
import { finished } from './verdicts.ts';

/** One record's call: its lease, Bedrock, and its result or what the failure table makes of a failure. */

/** One call: lease, Bedrock, result. Unexpected errors become an unhandled verdict, never a lost settlement. */
export async function callModel(call: Call, batch: Batch): Promise<CallOutcome> {
  const { ports, settings } = batch;
  let called = false;
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
    if (earlier !== undefined)
      return { verdict: { kind: 'done', status: earlier.outcome.status, result: earlier }, charged: 0 };
    called = true;
    const outcome = await invoke(call, lease, batch);
    return { ...outcome, verdict: { ...outcome.verdict, called } };
  } catch (error) {
    return { verdict: { kind: 'unhandled', error, called }, charged: call.cost.charge };
  }
}

async function invoke(call: Call, lease: AcquiredLease, batch: Batch): Promise<CallOutcome> {
  const { settings } = batch;
  const { invocation, subject } = call;
  const calledAt = settings.clock.now();
  let answer: ModelAnswer & { readonly sent: ServiceTier };
  try {
    answer = await invokeAtTier(call, batch);
  } catch (error) {
    return afterFailure(call, lease, classifyFailure(error), batch);
  }
  const { response } = answer;
  const usage = withWriteTtl(usageOfResponse(response), call.prefixTtl);
  const model = {
    modelId: invocation.modelId,
    region: invocation.resolved.region,
    latencyMs: settings.clock.now() - calledAt,
  };
  settings.reservations.learn(call.calibrationKey, invocation.estimate, usage, model.latencyMs);
  const verdict = finished(batch, {
    subject,
    outcome: { status: 'succeeded', response },
    billing: { usage, resolved: invocation.resolved, tier: answer.servedTier ?? answer.sent },
    downgraded: invocation.tier !== answer.sent,
    attempts: lease.attempt,
    model,
    uncounted: uncountedOf(call, lease, false),
  });
  const charged =
    usage.input_tokens +
    (usage.cache_creation_input_tokens ?? 0) +
    usage.output_tokens * settings.outputBurndown;
  return { verdict, charged };
}

/**
 * The call at its tier. A tier Bedrock refuses for the model costs nothing and no attempt: the job remembers
 * the refusal (its later records ask for default at once) and the call is made again on default.
 */
async function invokeAtTier(call: Call, batch: Batch): Promise<ModelAnswer & { readonly sent: ServiceTier }> {
  const { ports, deadline } = batch;
  const { invocation } = call;
  const target = { region: invocation.resolved.region, modelId: invocation.modelId };
  const onDefault = async () => ({
    ...(await ports.model.invoke(target, invocation.bodyJson, deadline.signal)),
    sent: DEFAULT_SERVICE_TIER,
  });
  if (call.tier === DEFAULT_SERVICE_TIER) return onDefault();
  try {
    const answer = await ports.model.invoke(
      { ...target, serviceTier: call.tier },
      invocation.bodyJson,
      deadline.signal,
    );
    return { ...answer, sent: call.tier };
  } catch (error) {
    if (!classifyFailure(error).tierRefused) throw error;
    await ports.ledger.refuseTier(call.job.jobId, invocation.modelId, call.tier);
    return onDefault();
  }
}

/** A failed call through the failure table: wait for the daily quota, try again later, or an error result. */
async function afterFailure(
  call: Call,
  lease: AcquiredLease,
  failure: Failure,
  batch: Batch,
): Promise<CallOutcome> {
  const { ports, settings } = batch;
  const { job, message } = call;
  // Bedrock charges nothing for a call it answered with an error; a call that got no answer may have run.
  const charged = failure.answered ? 0 : call.cost.charge;
  if (failure.dailyQuota) {
    await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, { waited: true });
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
      verdict: finished(batch, { subject: call.subject, outcome, attempts: lease.attempt, uncounted }),
      charged,
      failure,
    };
  }
  // The record keeps its unanswered calls: the attempt that settles it counts them, once, with its result.
  await ports.ledger.releaseRecord(job.jobId, message.lineNumber, settings.owner, {
    failed: failure.retry,
    ...(failure.answered ? {} : { unanswered: true }),
  });
  const verdict = {
    kind: 'retry',
    delaySeconds: decision.delaySeconds,
    failure,
    pool: call.budgetKey,
  } as const;
  return { verdict, charged, failure };
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
 * as an hour's cache write when the request has a breakpoint, and `max_tokens` of output, at its tier's
 * prices (default's when the tier's are unknown).
 */
function costCapNanoUsd({ invocation, tier }: Call): number {
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
  const atTier = costOfRequest(usage, model, endpoint, tier) ?? costOfRequest(usage, model, endpoint);
  return atTier?.total ?? 0;
}
