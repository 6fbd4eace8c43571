import { describe, expect, it } from 'vitest';
import { localTypicalRecord } from '../../local/run-job.ts';
import {
  DEFAULT_TYPICAL_RECORD,
  leaseSecondsFor,
  VISIBILITY_PER_FUNCTION_TIMEOUT,
  workerShapeFor,
} from '../../shared/budget/worker-shape.ts';

describe('the worker shape one derivation gives the stack, run and local up', () => {
  describe.each([
    // case, choices, concurrency, timeout, lease
    ['the stack by default', { tokensPerMinute: 400_000 }, 4, 300, 360],
    ['a 100,000 quota', { tokensPerMinute: 100_000 }, 2, 300, 360],
    ['a short timeout', { tokensPerMinute: 100_000, timeoutSeconds: 30 }, 2, 30, 36],
    ['a huge quota and a short timeout', { tokensPerMinute: 100_000_000, timeoutSeconds: 10 }, 557, 10, 15],
    [
      'a large quota of short, fast records',
      {
        tokensPerMinute: 10_000_000,
        typicalRecord: { inputTokens: 100, outputTokens: 40, latencySeconds: 2 },
      },
      113,
      300,
      360,
    ],
  ])('%s', (_case, choices, concurrency, timeout, lease) => {
    const shape = workerShapeFor(choices);

    it(`runs ${concurrency} invocations of 20 records gathered for a second`, () => {
      expect(shape).toMatchObject({ concurrency, batchSize: 20, batchingWindowSeconds: 1 });
    });

    it(`runs each for ${timeout} s, hidden six times as long, leased for ${lease} s`, () => {
      expect(shape.timeoutSeconds).toBe(timeout);
      expect(shape.visibilityTimeoutSeconds).toBe(timeout * VISIBILITY_PER_FUNCTION_TIMEOUT);
      expect(shape.leaseSeconds).toBe(lease);
      expect(shape.leaseSeconds).toBeGreaterThan(shape.timeoutSeconds);
    });
  });

  it.each([1, 10, 60, 300, 900])('leases a record past a %i-second invocation, by 5 to 60 s', (timeout) => {
    const margin = leaseSecondsFor(timeout) - timeout;
    expect(margin).toBeGreaterThanOrEqual(5);
    expect(margin).toBeLessThanOrEqual(60);
  });

  it.each([
    ['the stand-in at speed 1', { speed: 1 }, DEFAULT_TYPICAL_RECORD.latencySeconds],
    ['the stand-in at speed 0.5', { speed: 0.5 }, DEFAULT_TYPICAL_RECORD.latencySeconds / 2],
    ['the stand-in answering at once', { speed: 0 }, 0],
    ['real Bedrock, whatever the speed', { speed: 0, bedrock: 'aws' as const }, 10],
  ])('sizes a local run for %s', (_case, options, latencySeconds) => {
    expect(localTypicalRecord(options)).toEqual({ ...DEFAULT_TYPICAL_RECORD, latencySeconds });
  });
});
