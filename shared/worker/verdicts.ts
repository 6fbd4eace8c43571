import type { StoredResult, UncountedCalls } from '../core/model.ts';
import type { PipelineError } from '../errors.ts';
import { classifyFailure } from '../failures.ts';
import type { RecordOutcome } from '../output/result-records.ts';
import { completionOf } from '../pipeline/complete.ts';
import { poolName } from '../quotas/pools.ts';
import type { Batch, RecordVerdict, WorkerSettings } from './batch.ts';

/** The verdicts the prepare and call stages reach, built one way wherever they are reached. */

/** A record done in this invocation: its result, to be stored and counted by the count stage. */
export function finished(
  batch: Pick<Batch, 'settings'>,
  done: {
    subject: StoredResult['subject'];
    outcome: RecordOutcome;
    attempts: number;
    billing?: Parameters<typeof completionOf>[3];
    model?: { modelId: string; region: string; latencyMs: number };
    uncounted?: UncountedCalls | undefined;
    /** It asked for a tier Bedrock refused for its model, and was answered on default. */
    downgraded?: boolean;
  },
): RecordVerdict & { kind: 'done' } {
  const { subject, outcome, billing, model, uncounted } = done;
  const answered = completionOf(subject.lineNumber, subject.family, outcome, billing);
  const completion = {
    ...answered,
    ...(done.downgraded === true ? { downgraded: true } : {}),
    ...(model === undefined ? {} : { pool: poolName(model) }),
    ...(uncounted === undefined ? {} : { uncounted }),
  };
  const result: StoredResult = {
    subject,
    outcome,
    completion,
    timing: {
      finishedAt: new Date(batch.settings.clock.now()).toISOString(),
      attempts: done.attempts,
      ...model,
    },
  };
  return { kind: 'done', status: outcome.status, result, ...(model === undefined ? {} : { model }) };
}

export function erroredOutcome(error: PipelineError): RecordOutcome {
  return { status: 'errored', failure: classifyFailure(error) };
}

/** A call that could not start in this invocation goes back to the queue until its tokens can be there. */
export function waitFor(retryAt: number | undefined, batch: Batch): RecordVerdict {
  const waitMs = Math.max(0, (retryAt ?? batch.deadline.latestStart) - batch.settings.clock.now());
  return { kind: 'wait', cause: 'budget', delaySeconds: waitSeconds(waitMs, batch.settings) };
}

/** A wait as an SQS delay: spread by up to a quarter so records sent back together do not return together. */
function waitSeconds(waitMs: number, settings: WorkerSettings): number {
  const jitter = 1 + 0.25 * (settings.random ?? Math.random)();
  return Math.min(900, Math.max(1, Math.ceil((waitMs / 1000) * jitter)));
}
