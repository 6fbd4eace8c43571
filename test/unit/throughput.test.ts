import { describe, expect, it } from 'vitest';
import { chargePerRecord, drainSeconds, workerConcurrencyFor } from '../../shared/budget/throughput.ts';

const shape = (
  tokensPerMinute: number,
  inputTokens: number,
  outputTokens: number,
  latencySeconds: number,
) => ({
  tokensPerMinute,
  outputBurndown: 5,
  record: { inputTokens, outputTokens, latencySeconds },
});

describe('what a quota implies for the workers', () => {
  it('charges a typical record its input and its output x burndown', () => {
    expect(chargePerRecord(shape(1, 1_000, 400, 1))).toBe(3_000);
  });

  describe.each([
    // quota, input, output, latency, batch size, invocations
    ['a small quota: the floor of two', 10_000, 1_000, 400, 10, 20, 2],
    ['the default stack', 400_000, 1_000, 400, 10, 20, 4],
    ['a 100,000 quota of short answers', 100_000, 100, 80, 0.6, 20, 2],
    ['10,000,000 a minute of 300-token records', 10_000_000, 100, 40, 2, 20, 113],
    ['slow answers need more in flight', 10_000_000, 100, 40, 20, 20, 1_000],
  ])('%s', (_case, tokensPerMinute, input, output, latency, batchSize, invocations) => {
    it(`runs ${invocations} invocations at once`, () => {
      expect(workerConcurrencyFor(shape(tokensPerMinute, input, output, latency), batchSize)).toBe(
        invocations,
      );
    });
  });

  it('drains a queue of records at the rate the quota sustains', () => {
    // 100,000 tokens a minute / 500 per record = 200 records a minute.
    expect(drainSeconds(shape(100_000, 100, 80, 1), 1_000)).toBe(300);
  });
});
