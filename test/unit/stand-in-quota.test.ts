import { describe, expect, it } from 'vitest';
import { QuotaBoard, type QuotaSettings, type RequestedTokens } from '../../local/bedrock/quota.ts';

const MODEL = 'global.anthropic.claude-haiku-4-5-20251001-v1:0';
const pool = (modelId = MODEL, region = 'us-west-2') => ({ region, modelId });

/** A quota board on a clock the test moves, with Claude 4's output burndown of 5. */
function board(settings: QuotaSettings, perModel: Record<string, QuotaSettings> = {}) {
  const clock = { now: 1_000_000 };
  const quotas = new QuotaBoard(settings, perModel, 5, () => clock.now);
  const usage = (modelId = MODEL, region = 'us-west-2') =>
    quotas.usage().find((entry) => entry.modelId === modelId && entry.region === region);
  return { clock, quotas, usage };
}

const request = (overrides: Partial<RequestedTokens> = {}): RequestedTokens => ({
  input: 100,
  cacheWrite: 0,
  cacheRead: 0,
  maxTokens: 400,
  ...overrides,
});

const used = (output: number, overrides: Partial<RequestedTokens> = {}) => {
  const { maxTokens: _unused, ...rest } = request(overrides);
  return { ...rest, output };
};

describe('the stand-in quota (the accounting of Bedrock quotas)', () => {
  it('reserves input + cache write + cache read + max_tokens x 1 when a request starts', () => {
    // Prepare
    const { quotas, usage } = board({ tokensPerMinute: 10_000 });

    // Act
    const admission = quotas.reserve(
      pool(),
      request({ input: 100, cacheWrite: 200, cacheRead: 300, maxTokens: 400 }),
    );

    // Assess
    expect(admission).toEqual({ admitted: true, reservation: { pool: pool(), reserved: 1_000 } });
    expect(usage()).toMatchObject({ availableTokens: 9_000, tokensReserved: 1_000, inFlight: 1 });
  });

  it('charges input + cache write + output x 5 when it ends, releasing cache reads', () => {
    // Prepare
    const { quotas, usage } = board({ tokensPerMinute: 10_000 });
    const admission = quotas.reserve(
      pool(),
      request({ input: 100, cacheWrite: 200, cacheRead: 300, maxTokens: 400 }),
    );
    if (!admission.admitted) throw new Error('not admitted');

    // Act
    quotas.settle(admission.reservation, used(50, { input: 100, cacheWrite: 200, cacheRead: 300 }));

    // Assess: 100 + 200 + 50 x 5 = 550 charged; the 300 read from cache came back.
    expect(usage()).toMatchObject({
      availableTokens: 10_000 - 550,
      tokensReserved: 1_000,
      tokensCharged: 550,
      inputTokens: 100,
      cacheWriteTokens: 200,
      cacheReadTokens: 300,
      outputTokens: 50,
      inFlight: 0,
    });
  });

  it('lets a charge exceed its reservation and leaves the quota in debt until it refills', () => {
    // Prepare: 1,000 tokens a minute; a request reserves 100 + 400 = 500 and is charged 100 + 300 x 5 = 1,600.
    const { clock, quotas, usage } = board({ tokensPerMinute: 1_000 });
    const first = quotas.reserve(pool(), request());
    if (!first.admitted) throw new Error('not admitted');

    // Act
    quotas.settle(first.reservation, used(300));
    const debt = usage()?.availableTokens;
    const whileInDebt = quotas.reserve(pool(), request());
    clock.now += 65_999;
    const justBeforeRoom = quotas.reserve(pool(), request());
    clock.now += 1;
    const withRoom = quotas.reserve(pool(), request());

    // Assess: from -600, the next 500 tokens of room take 1,100 tokens of refill, 66 s at 1,000 a minute.
    expect(debt).toBe(-600);
    expect(whileInDebt).toEqual({ admitted: false, cause: 'tokensPerMinute' });
    expect(justBeforeRoom).toEqual({ admitted: false, cause: 'tokensPerMinute' });
    expect(withRoom.admitted).toBe(true);
  });

  it('refills continuously, never above one minute of tokens', () => {
    // Prepare
    const { clock, quotas, usage } = board({ tokensPerMinute: 6_000 });
    quotas.reserve(pool(), request({ input: 5_500, maxTokens: 500 }));

    // Act
    clock.now += 1_000;
    const afterOneSecond = usage()?.availableTokens;
    clock.now += 600_000;
    const afterTenMinutes = usage()?.availableTokens;

    // Assess
    expect(afterOneSecond).toBe(100);
    expect(afterTenMinutes).toBe(6_000);
  });

  it('admits a request larger than the whole minute when the bucket is full, and only then', () => {
    // Prepare
    const { clock, quotas, usage } = board({ tokensPerMinute: 1_000 });

    // Act
    const huge = quotas.reserve(pool(), request({ input: 1_500, maxTokens: 500 }));
    const debt = usage()?.availableTokens;
    clock.now += 60_000;
    const minuteLater = quotas.reserve(pool(), request({ input: 1_500, maxTokens: 500 }));
    clock.now += 60_000;
    const whenFullAgain = quotas.reserve(pool(), request({ input: 1_500, maxTokens: 500 }));

    // Assess
    expect(huge.admitted).toBe(true);
    expect(debt).toBe(-1_000);
    expect(minuteLater).toEqual({ admitted: false, cause: 'tokensPerMinute' });
    expect(whenFullAgain.admitted).toBe(true);
  });

  it('keeps one quota per model id as called, with per-id settings', () => {
    // Prepare
    const regional = 'us.anthropic.claude-haiku-4-5-20251001-v1:0';
    const { quotas, usage } = board({ tokensPerMinute: 1_000 }, { [regional]: { tokensPerMinute: 600 } });

    // Act
    const inProfile = [quotas.reserve(pool(regional), request()), quotas.reserve(pool(regional), request())];
    const global = quotas.reserve(pool(), request());

    // Assess
    expect(inProfile.map((answer) => answer.admitted)).toEqual([true, false]);
    expect(global.admitted).toBe(true);
    expect(usage(regional)).toMatchObject({ tokensPerMinute: 600, availableTokens: 100 });
    expect(usage()).toMatchObject({ tokensPerMinute: 1_000, availableTokens: 500 });
  });

  it('keeps the same model id in two source regions apart, each with its own settings or the id’s', () => {
    // Prepare: us-east-1's global quota set on its own; us-west-2 takes the model id's.
    const { quotas, usage } = board(
      { tokensPerMinute: 10_000 },
      { [`us-east-1#${MODEL}`]: { tokensPerMinute: 600 }, [MODEL]: { tokensPerMinute: 1_000 } },
    );

    // Act
    const east = [
      quotas.reserve(pool(MODEL, 'us-east-1'), request()),
      quotas.reserve(pool(MODEL, 'us-east-1'), request()),
    ];
    const west = [quotas.reserve(pool(), request()), quotas.reserve(pool(), request())];

    // Assess
    expect(east.map((answer) => answer.admitted)).toEqual([true, false]);
    expect(west.map((answer) => answer.admitted)).toEqual([true, true]);
    expect(usage(MODEL, 'us-east-1')).toMatchObject({ region: 'us-east-1', tokensPerMinute: 600 });
    expect(usage()).toMatchObject({ region: 'us-west-2', tokensPerMinute: 1_000, availableTokens: 0 });
  });

  it('has a daily quota of tokensPerMinute x 1440 unless set', () => {
    // Act
    const { quotas, usage } = board({ tokensPerMinute: 1_000 });
    quotas.reserve(pool(), request());

    // Assess
    expect(usage()).toMatchObject({ tokensPerDay: 1_440_000, availableDailyTokens: 1_440_000 - 500 });
  });

  it("gives a profile its model's daily quota, doubled for cross-region calls, unless it has its own", () => {
    // Prepare
    const bare = 'anthropic.claude-haiku-4-5-20251001-v1:0';
    const { quotas } = board(
      { tokensPerMinute: 1_000 },
      {
        [bare]: { tokensPerMinute: 1_000, tokensPerDay: 50_000 },
        [`us.${bare}`]: { tokensPerMinute: 1_000, tokensPerDay: 7 },
      },
    );

    // Act
    const days = [bare, `global.${bare}`, `us.${bare}`].map(
      (modelId) => quotas.limitsOf(pool(modelId)).tokensPerDay,
    );

    // Assess
    expect(days).toEqual([50_000, 100_000, 7]);
  });

  it('refuses with the daily cause once the day is spent, which a short wait does not fix', () => {
    // Prepare: 1,000 tokens a day, 100,000 a minute.
    const { clock, quotas, usage } = board({ tokensPerMinute: 100_000, tokensPerDay: 1_000 });
    const first = quotas.reserve(pool(), request());
    if (!first.admitted) throw new Error('not admitted');
    quotas.settle(first.reservation, used(200));

    // Act
    const sameMinute = quotas.reserve(pool(), request());
    clock.now += 60_000;
    const minuteLater = quotas.reserve(pool(), request());
    clock.now += 86_400_000;
    const dayLater = quotas.reserve(pool(), request());

    // Assess
    expect(sameMinute).toEqual({ admitted: false, cause: 'tokensPerDay' });
    expect(minuteLater).toEqual({ admitted: false, cause: 'tokensPerDay' });
    expect(dayLater.admitted).toBe(true);
    expect(usage()?.throttledBy).toEqual({ tokensPerMinute: 0, tokensPerDay: 2, requestsPerMinute: 0 });
  });

  it('limits requests per minute only where a limit is set', () => {
    // Prepare
    const { clock, quotas, usage } = board({ tokensPerMinute: 1_000_000, requestsPerMinute: 2 });

    // Act
    const answers = [
      quotas.reserve(pool(), request()),
      quotas.reserve(pool(), request()),
      quotas.reserve(pool(), request()),
    ];
    clock.now += 30_000;
    const halfMinuteLater = quotas.reserve(pool(), request());

    // Assess
    expect(answers.map((answer) => answer.admitted)).toEqual([true, true, false]);
    expect(halfMinuteLater.admitted).toBe(true);
    expect(usage()).toMatchObject({
      requests: 3,
      throttled: 1,
      throttledBy: { tokensPerMinute: 0, tokensPerDay: 0, requestsPerMinute: 1 },
    });
  });

  it('counts requests in flight and their peak', () => {
    // Prepare
    const { quotas, usage } = board({ tokensPerMinute: 1_000_000 });
    const admissions = [1, 2, 3].map(() => quotas.reserve(pool(), request()));

    // Act
    for (const admission of admissions.slice(0, 2)) {
      if (admission.admitted) quotas.settle(admission.reservation, used(10));
    }
    quotas.reserve(pool(), request());

    // Assess
    expect(usage()).toMatchObject({ inFlight: 2, peakInFlight: 3, requests: 4 });
  });
});
