import { describe, expect, it } from 'vitest';
import {
  afterThrottle,
  atRate,
  type BucketState,
  DEFAULT_RATE_SETTINGS,
  FULL_BUCKET_LEAD_MS,
  fullBucket,
  grantable,
  latestFullAtToStartBy,
  levelAt,
  rateAfterRecovery,
  rateAfterThrottle,
  responseToThrottle,
  THROTTLE_MEMORY_MS,
  takeEach,
} from '../../shared/budget/bucket.ts';

const T0 = 1_800_000_000_000;
const rates = { ...DEFAULT_RATE_SETTINGS, tokensPerMinute: 60_000 };
/** 60,000 tokens a minute: a token a millisecond, so times read as token counts. */
const full = (): BucketState => fullBucket(60_000, T0);

describe('the shared budget as a bucket kept by the moment it is full again', () => {
  it('holds a minute of tokens when full and refills continuously', () => {
    // Prepare
    const state = { ...full(), fullAt: T0 + 45_000 };

    // Act
    const levels = [T0, T0 + 15_000, T0 + 45_000, T0 + 90_000].map((now) => levelAt(state, now));

    // Assess
    expect(levels).toEqual([15_000, 30_000, 60_000, 60_000]);
  });

  it('is below zero, in debt, while fullAt is more than a minute away', () => {
    // Act
    const level = levelAt({ ...full(), fullAt: T0 + 75_000 }, T0);

    // Assess
    expect(level).toBe(-15_000);
  });

  describe.each([
    // bucket fullAt (after T0), tokens taken, expected startAts (after T0), expected fullAt (after T0)
    [
      'a full bucket: all start now, refill counted from a lead later',
      0,
      [10_000, 20_000],
      [0, 0],
      30_000 + FULL_BUCKET_LEAD_MS,
    ],
    [
      'a bucket holding 15,000 tokens: the first now, the second when it holds 20,000 more',
      45_000,
      [10_000, 20_000],
      [0, 15_000],
      75_000,
    ],
    ['an empty bucket: each when its tokens have refilled', 60_000, [1_000, 2_000], [1_000, 3_000], 63_000],
    ['a bucket in debt: after the debt too', 70_000, [5_000], [15_000], 75_000],
    ['a take larger than the bucket: when the bucket is full', 30_000, [90_000], [30_000], 120_000],
  ])('taking from %s', (_case, fullAfter, tokens, startsAfter, fullAtAfter) => {
    it('says when each take may be spent, in order', () => {
      // Act
      const taken = takeEach({ ...full(), fullAt: T0 + fullAfter }, tokens, T0);

      // Assess
      expect(taken.startAts.map((startAt) => startAt - T0)).toEqual(startsAfter);
      expect(taken.fullAt - T0).toBe(fullAtAfter);
    });
  });

  describe('with a daily quota below a day of the minute quota', () => {
    // 144,000 tokens a day against 60,000 a minute: a day's bucket refills 100 tokens a minute.
    const day = (): BucketState => fullBucket(60_000, T0, 144_000);

    it('is kept as a second bucket, and not kept where the daily quota cannot run out first', () => {
      expect(day().day).toEqual({ fullAt: T0, tokensPerDay: 144_000 });
      expect(fullBucket(60_000, T0, 60_000 * 1_440).day).toBeUndefined();
      expect(fullBucket(60_000, T0).day).toBeUndefined();
    });

    it("starts a take once both buckets hold it: past the day's tokens, when the day has refilled them", () => {
      // Prepare: 140,000 of the day's tokens spent; the minute's bucket full.
      const state = { ...day(), day: { fullAt: T0 + 84_000_000, tokensPerDay: 144_000 } };

      // Act
      const taken = takeEach(state, [3_000, 3_000], T0);

      // Assess: 4,000 left today; the second take's 2,000 more arrive 20 minutes on.
      expect(taken.startAts.map((startAt) => startAt - T0)).toEqual([0, 1_200_000]);
      expect(taken.dayFullAt).toBe(T0 + 84_000_000 + 3_600_000);
      expect(grantable(state, [3_000, 3_000], T0, T0 + 60_000)).toBe(1);
    });
  });

  it('grants the first takes that can start by a deadline, never a later one before an earlier', () => {
    // Prepare: 10,000 tokens in the bucket.
    const state = { ...full(), fullAt: T0 + 50_000 };

    // Act
    const counts = [0, 5_000, 15_000, 25_000].map((wait) =>
      grantable(state, [10_000, 10_000, 10_000], T0, T0 + wait),
    );

    // Assess
    expect(counts).toEqual([1, 1, 2, 3]);
  });

  it('gives the one conditional write its limit: the latest fullAt from which the last take still starts in time', () => {
    // Prepare
    const tokens = [10_000, 20_000];
    const latestStart = T0 + 5_000;

    // Act
    const limit = latestFullAtToStartBy(tokens, 60_000, latestStart);
    const atLimit = takeEach({ ...full(), fullAt: limit }, tokens, T0);
    const pastLimit = takeEach({ ...full(), fullAt: limit + 1 }, tokens, T0);

    // Assess
    expect(atLimit.startAts.at(-1)).toBe(latestStart);
    expect(pastLimit.startAts.at(-1)).toBeGreaterThan(latestStart);
  });

  it('keeps its tokens and its debt when the rate changes', () => {
    // Prepare: 15,000 tokens of 60,000 short.
    const state = { ...full(), fullAt: T0 + 15_000 };

    // Act
    const halved = atRate(state, 30_000, T0);

    // Assess: 15,000 tokens short at 30,000 a minute is 30 s from full.
    expect(halved).toEqual({ fullAt: T0 + 30_000, tokensPerMinute: 30_000, rateChangedAt: T0 });
    expect(levelAt(halved, T0)).toBe(15_000);
  });

  it.each([
    // case, fullAt after T0 at 60,000 a minute, the level expected at 30,000 a minute
    ['an empty bucket stays empty, owing nothing', 60_000, 0],
    ['a bucket short of more than the new size is empty', 50_000, 0],
    ['a debt stays a debt', 90_000, -30_000],
  ])('at a lower rate: %s', (_case, fullAfter, expectedLevel) => {
    // Act
    const halved = atRate({ ...full(), fullAt: T0 + fullAfter }, 30_000, T0);

    // Assess
    expect(levelAt(halved, T0)).toBeCloseTo(expectedLevel, 6);
  });
});

describe('a throttle Bedrock answers to a call the budget allowed', () => {
  describe.each([
    // case, bucket (fullAt and throttledAt after T0, rate, rateChangedAt after T0), expected response
    [
      'the first: the bucket is emptied now',
      0,
      undefined,
      60_000,
      -600_000,
      { kind: 'empty', fullAt: T0 + 60_000 },
    ],
    [
      'the first, on a bucket in debt: it stays in debt',
      90_000,
      undefined,
      60_000,
      -600_000,
      { kind: 'empty', fullAt: T0 + 90_000 },
    ],
    [
      'one a memory after the last: emptied again',
      0,
      -THROTTLE_MEMORY_MS,
      60_000,
      -600_000,
      { kind: 'empty', fullAt: T0 + 60_000 },
    ],
    [
      'one within a memory of the last: the rate drops',
      0,
      -10_000,
      60_000,
      -600_000,
      { kind: 'slow', tokensPerMinute: 42_000 },
    ],
    ['one just after a drop: only marked', 0, -1_000, 42_000, -1_000, { kind: 'mark' }],
  ] as const)('%s', (_case, fullAfter, throttledAfter, tokensPerMinute, changedAfter, expected) => {
    const state: BucketState = {
      fullAt: T0 + fullAfter,
      tokensPerMinute,
      rateChangedAt: T0 + changedAfter,
      ...(throttledAfter === undefined ? {} : { throttledAt: T0 + throttledAfter }),
    };

    it('responds to it so, and marks when it came', () => {
      // Act
      const response = responseToThrottle(state, rates, T0);
      const after = afterThrottle(state, response, T0);

      // Assess
      expect(response).toEqual(expected);
      expect(after.throttledAt).toBe(T0);
      expect(after.tokensPerMinute).toBe(
        response.kind === 'slow' ? response.tokensPerMinute : tokensPerMinute,
      );
      if (response.kind === 'empty') expect(after.fullAt).toBe(response.fullAt);
    });
  });
});

describe('the rate, when Bedrock throttles what the budget allowed', () => {
  it('drops by the decrease factor on a throttle', () => {
    // Act
    const rate = rateAfterThrottle(full(), rates, T0 + 1);

    // Assess
    expect(rate).toBe(42_000);
  });

  it('drops once for a burst of throttles within the cooldown, again after it', () => {
    // Prepare
    const lowered = { ...full(), tokensPerMinute: 42_000, rateChangedAt: T0 };

    // Act
    const withinCooldown = rateAfterThrottle(lowered, rates, T0 + 4_999);
    const afterCooldown = rateAfterThrottle(lowered, rates, T0 + 5_000);

    // Assess
    expect(withinCooldown).toBeUndefined();
    expect(afterCooldown).toBe(29_400);
  });

  it('never drops below the floor', () => {
    // Act
    const rate = rateAfterThrottle(
      { ...full(), tokensPerMinute: 6_000, rateChangedAt: T0 - 60_000 },
      rates,
      T0,
    );

    // Assess
    expect(rate).toBeUndefined();
  });

  it('climbs back by a share of the quota per quiet interval, up to the quota', () => {
    // Prepare
    const lowered = { ...full(), tokensPerMinute: 42_000, rateChangedAt: T0 };

    // Act
    const tooSoon = rateAfterRecovery(lowered, rates, T0 + 9_999);
    const afterInterval = rateAfterRecovery(lowered, rates, T0 + 10_000);
    const nearlyThere = rateAfterRecovery({ ...lowered, tokensPerMinute: 59_000 }, rates, T0 + 10_000);
    const atQuota = rateAfterRecovery(full(), rates, T0 + 60_000);

    // Assess
    expect([tooSoon, afterInterval, nearlyThere, atQuota]).toEqual([undefined, 45_000, 60_000, undefined]);
  });

  it('drops at once to a quota lowered by configuration', () => {
    // Act
    const rate = rateAfterRecovery({ ...full(), tokensPerMinute: 90_000 }, rates, T0);

    // Assess
    expect(rate).toBe(60_000);
  });
});
