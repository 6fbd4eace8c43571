import { describe, expect, it } from 'vitest';
import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';

const KEY = 'job-1#global.anthropic.claude-haiku-4-5-20251001-v1:0';
const usage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  output_tokens: output,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: cacheRead,
});

describe('what the budget reserves for a call', () => {
  it("is Bedrock's own reservation, with the upper input estimate, before any answer", () => {
    // Prepare
    const estimator = new ReservationEstimator(5);

    // Act
    const input = estimator.inputTokens(KEY, { lower: 30, upper: 100 });
    const tokens = estimator.tokensToReserve(KEY, input, 1_024);

    // Assess
    expect([input, tokens]).toEqual([100, 1_124]);
  });

  it('scales the estimate by the largest ratio of counted to estimated input seen, never below the lower bound', () => {
    // Prepare
    const estimator = new ReservationEstimator(5);
    estimator.learn(KEY, { lower: 30, upper: 100 }, usage(70, 10));
    estimator.learn(KEY, { lower: 30, upper: 100 }, usage(60, 10, 20));

    // Act
    const input = estimator.inputTokens(KEY, { lower: 150, upper: 1_000 });
    const small = estimator.inputTokens(KEY, { lower: 900, upper: 1_000 });

    // Assess: the second answer counted 80 of 100, cache reads included.
    expect(input).toBe(800);
    expect(small).toBe(900);
  });

  it('takes an exact count (CountTokens) as it is', () => {
    // Prepare
    const estimator = new ReservationEstimator(5);
    estimator.learn(KEY, { lower: 30, upper: 100 }, usage(50, 10));

    // Act
    const input = estimator.inputTokens(KEY, { lower: 3_000, upper: 10_000 }, 7_321);

    // Assess
    expect(input).toBe(7_321);
  });

  it("covers the charge of the job's long answers when output x 5 is more than max_tokens", () => {
    // Prepare: answers of 1 to 100 tokens; the 90th percentile is 91.
    const estimator = new ReservationEstimator(5);
    for (let output = 1; output <= 100; output += 1)
      estimator.learn(KEY, { lower: 1, upper: 10 }, usage(10, output));

    // Act
    const longAnswers = estimator.tokensToReserve(KEY, 10, 256);
    const largeMaxTokens = estimator.tokensToReserve(KEY, 10, 4_096);
    const smallMaxTokens = estimator.tokensToReserve(KEY, 10, 50);

    // Assess: output never passes max_tokens, so a small max_tokens caps the charge to expect.
    expect([longAnswers, largeMaxTokens, smallMaxTokens]).toEqual([10 + 91 * 5, 10 + 4_096, 10 + 50 * 5]);
  });

  it('keeps jobs and models apart, and remembers only recent answers', () => {
    // Prepare
    const estimator = new ReservationEstimator(5, { window: 3 });
    for (const output of [500, 500, 500, 10, 10, 10])
      estimator.learn(KEY, { lower: 1, upper: 10 }, usage(10, output));

    // Act
    const sameJob = estimator.tokensToReserve(KEY, 10, 1_000);
    const otherJob = estimator.tokensToReserve('job-2#other', 10, 1_000);

    // Assess
    expect([sameJob, otherJob]).toEqual([1_010, 1_010]);
  });
});
