import { describe, expect, it } from 'vitest';
import { ReservationEstimator } from '../../shared/budget/reservation-estimate.ts';

const KEY = 'job-1#global.anthropic.claude-haiku-4-5-20251001-v1:0';
const usage = (input: number, output: number, cacheRead = 0) => ({
  input_tokens: input,
  output_tokens: output,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: cacheRead,
});
const estimate = { lower: 1, upper: 10 };

describe('what a call costs the quota, before it is made', () => {
  it('is the most Bedrock may charge, with the upper input estimate, before any answer', () => {
    // Prepare
    const estimator = new ReservationEstimator(5);

    // Act
    const input = estimator.inputTokens(KEY, { lower: 30, upper: 100 });
    const cost = estimator.costOf(KEY, input, 1_024, 20);

    // Assess
    expect(input).toBe(100);
    expect(cost).toEqual({ reserved: 1_124, charge: 100 + 1_024 * 5, ceiling: 100 + 1_024 * 5 });
  });

  it('scales the estimate by the largest ratio of counted to estimated input seen, never below the lower bound', () => {
    // Prepare
    const estimator = new ReservationEstimator(5);
    estimator.learn(KEY, { lower: 30, upper: 100 }, usage(70, 10), 500);
    estimator.learn(KEY, { lower: 30, upper: 100 }, usage(60, 10, 20), 500);

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
    estimator.learn(KEY, { lower: 30, upper: 100 }, usage(50, 10), 500);

    // Act
    const input = estimator.inputTokens(KEY, { lower: 3_000, upper: 10_000 }, 7_321);

    // Assess
    expect(input).toBe(7_321);
  });

  describe.each([
    // batch size, expected output: the mean (100) plus one standard error (sd 50) of a batch's mean
    [1, 150],
    [4, 125],
    [25, 110],
  ])('in a batch of %i', (batchSize, output) => {
    it(`expects the charge of ${output} output tokens, so that the batch as a whole is rarely charged more`, () => {
      // Prepare: answers of 50 and 150 tokens, alternately: mean 100, standard deviation 50.
      const estimator = new ReservationEstimator(5);
      for (let index = 0; index < 100; index += 1) {
        estimator.learn(KEY, estimate, usage(10, index % 2 === 0 ? 50 : 150), 500);
      }

      // Act
      const cost = estimator.costOf(KEY, 10, 4_096, batchSize);

      // Assess: the ceiling is the longest answer seen.
      expect(cost).toEqual({ reserved: 10 + 4_096, charge: 10 + output * 5, ceiling: 10 + 150 * 5 });
    });
  });

  it('never expects more output than max_tokens allows', () => {
    // Prepare
    const estimator = new ReservationEstimator(5);
    estimator.learn(KEY, estimate, usage(10, 300), 500);

    // Act
    const cost = estimator.costOf(KEY, 10, 100, 20);

    // Assess
    expect(cost).toEqual({ reserved: 110, charge: 10 + 100 * 5, ceiling: 10 + 100 * 5 });
  });

  describe('for a call that reads a cached prefix', () => {
    it('expects Bedrock to release the fewest tokens a call that read the cache read, as reads are not charged', () => {
      // Prepare: the writer read nothing; two readers read 6,000 and 5,990 of their 6,050-token inputs.
      const estimator = new ReservationEstimator(5);
      estimator.learn(KEY, estimate, { ...usage(50, 100), cache_creation_input_tokens: 6_000 }, 500);
      estimator.learn(KEY, estimate, usage(50, 100, 6_000), 500);
      estimator.learn(KEY, estimate, usage(60, 100, 5_990), 500);

      // Act
      const reading = estimator.costOf(KEY, 6_050, 1_000, 1, true);
      const writing = estimator.costOf(KEY, 6_050, 1_000, 1);

      // Assess: Bedrock still reserves the whole input, reads included, when the call starts.
      expect(reading).toEqual({ reserved: 7_050, charge: 6_050 - 5_990 + 500, ceiling: 6_050 - 5_990 + 500 });
      expect(writing).toEqual({ reserved: 7_050, charge: 6_050 + 500, ceiling: 6_050 + 500 });
    });

    it('expects no read before a call has read the cache, so the first calls are never under-reserved', () => {
      // Prepare
      const estimator = new ReservationEstimator(5);
      estimator.learn(KEY, estimate, { ...usage(50, 100), cache_creation_input_tokens: 6_000 }, 500);

      // Act
      const cost = estimator.costOf(KEY, 6_050, 1_000, 1, true);

      // Assess
      expect(cost.charge).toBe(6_050 + 500);
    });
  });

  it('says how many calls must run at once to spend the quota at the latency seen', () => {
    // Prepare: answers take 2 s; 60,000 tokens a minute of 500-token calls is 2 calls a second.
    const estimator = new ReservationEstimator(5);
    estimator.learn(KEY, estimate, usage(10, 98), 2_000);

    // Act
    const inFlight = estimator.callsInFlight(KEY, 60_000, 500, 20);
    const beforeAnswers = estimator.callsInFlight('job-2#other', 60_000, 500, 20);
    const capped = estimator.callsInFlight(KEY, 6_000_000, 500, 20);
    const instant = new ReservationEstimator(5);
    instant.learn(KEY, estimate, usage(10, 98), 0);
    const unlimited = instant.callsInFlight(KEY, Number.POSITIVE_INFINITY, 500, 20);

    // Assess
    expect([inFlight, beforeAnswers, capped, unlimited]).toEqual([4, 20, 20, 20]);
  });

  it('keeps jobs and models apart, and remembers only recent answers', () => {
    // Prepare
    const estimator = new ReservationEstimator(5, { window: 3 });
    for (const output of [500, 500, 500, 10, 10, 10]) estimator.learn(KEY, estimate, usage(10, output), 500);

    // Act
    const sameJob = estimator.costOf(KEY, 10, 1_000, 20);
    const otherJob = estimator.costOf('job-2#other', 10, 1_000, 20);

    // Assess
    expect([sameJob.charge, otherJob.charge]).toEqual([60, 10 + 1_000 * 5]);
  });
});
