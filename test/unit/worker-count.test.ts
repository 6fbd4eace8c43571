import { describe, expect, it } from 'vitest';
import { NO_RETRIES } from '../../shared/core/retries.ts';
import { classifyFailure } from '../../shared/failures.ts';
import type { RecordMessage } from '../../shared/messages/record-message.ts';
import { newJobRecord } from '../../shared/pipeline/job.ts';
import type { Decided, RecordVerdict } from '../../shared/worker/batch.ts';
import { tallyOf } from '../../shared/worker/count.ts';
import { awsError, storedResult } from '../support/factories.ts';
import { jobDefaults } from '../support/pipeline-harness.ts';

const job = newJobRecord(
  'job-1',
  { bucket: 'b', key: 'inputs/a.jsonl' },
  jobDefaults,
  '2026-12-07T10:00:00.000Z',
);

function message(lineNumber: number, jobId = job.jobId): RecordMessage {
  return {
    v: 2,
    jobId,
    recordId: `r${lineNumber}`,
    lineNumber,
    source: { bucket: 'b', key: 'inputs/a.jsonl', byteStart: 0, byteEnd: 10 },
  };
}

const throttled = classifyFailure(awsError('ThrottlingException', 429));

describe('the count stage folds each verdict into its job counters', () => {
  it.each<[string, RecordVerdict, Record<string, number>]>([
    ['a record done before', { kind: 'done', status: 'already-done' }, { receives: 1 }],
    [
      'an answer after a wait for tokens',
      { kind: 'done', status: 'canceled', result: storedResult(1), called: true, waitedMs: 1_500 },
      { receives: 1, bedrockCalls: 1, budgetWaits: 1 },
    ],
    [
      'a throttled call tried again',
      { kind: 'retry', delaySeconds: 4, failure: throttled, called: true },
      { receives: 1, bedrockCalls: 1, retried: 1, bedrockThrottles: 1 },
    ],
    [
      'a call throttled, made again in the invocation and answered',
      {
        kind: 'done',
        status: 'succeeded',
        result: storedResult(1),
        called: true,
        throttledHere: { calls: 1, pool: 'us-west-2#global.model' },
      },
      { receives: 1, bedrockCalls: 2, retried: 1, bedrockThrottles: 1 },
    ],
    [
      'a call throttled, made again in the invocation and throttled again',
      {
        kind: 'retry',
        delaySeconds: 2,
        failure: throttled,
        called: true,
        throttledHere: { calls: 1, pool: 'us-west-2#global.model' },
      },
      { receives: 1, bedrockCalls: 2, retried: 2, bedrockThrottles: 2 },
    ],
    [
      'a record another worker holds (no call, no attempt spent)',
      { kind: 'retry', delaySeconds: 30, failure: undefined },
      { receives: 1 },
    ],
    [
      'a record sent back to wait for tokens',
      { kind: 'wait', cause: 'budget', delaySeconds: 20 },
      { receives: 1, sentBackToWait: 1 },
    ],
    [
      "a call refused for the day's quota",
      { kind: 'wait', cause: 'daily-quota', delaySeconds: 900, called: true },
      { receives: 1, bedrockCalls: 1, sentBackToWait: 1 },
    ],
  ])('%s', (_case, verdict, counters) => {
    // Act
    const [tally] = tallyOf([{ message: message(1), job, verdict }]);

    // Assess
    expect(tally?.retries).toEqual({ ...NO_RETRIES, ...counters });
  });

  it('counts a record delivered twice in one batch once, and each delivery as a receive', () => {
    // Prepare
    const decided: Decided[] = [
      { message: message(1), job, verdict: { kind: 'done', status: 'canceled', result: storedResult(1) } },
      { message: message(1), job, verdict: { kind: 'done', status: 'canceled', result: storedResult(1) } },
      { message: message(2), job, verdict: { kind: 'done', status: 'canceled', result: storedResult(2) } },
      // A message whose job the ledger does not know adds to no job.
      { message: message(3, 'gone'), job: undefined, verdict: { kind: 'unhandled', error: new Error('x') } },
    ];

    // Act
    const tallies = tallyOf(decided);

    // Assess
    expect(tallies).toHaveLength(1);
    expect(tallies[0]?.results.map((stored) => stored.completion.lineNumber)).toEqual([1, 2]);
    expect(tallies[0]?.retries.receives).toBe(3);
  });
});
