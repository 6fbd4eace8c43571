import { describe, expect, it } from 'vitest';
import { BatchAllowance, BRING_FORWARD_CHECK_MS } from '../../shared/budget/allowance.ts';
import type { Clock } from '../../shared/core/clock.ts';

/** A clock that moves only when someone sleeps, after everything under way has run. */
function fakeClock(start = 0) {
  const clock = { now: start };
  const fake: Clock = {
    now: () => clock.now,
    sleepUntil: async (time, signal) => {
      await new Promise((resolve) => setImmediate(resolve));
      signal.throwIfAborted();
      clock.now = Math.max(clock.now, time);
    },
  };
  return { clock, fake };
}

const never = new AbortController().signal;

describe("a batch's share of the budget", () => {
  it('lets calls hold what has arrived, and makes the next wait for the next arrival', async () => {
    // Prepare
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 500 },
        { at: 1_000, tokens: 300 },
      ],
      fake,
    );

    // Act
    await allowance.hold(400, never);
    const firstAt = clock.now;
    await allowance.hold(300, never);
    const secondAt = clock.now;

    // Assess
    expect([firstAt, secondAt]).toEqual([0, 1_000]);
  });

  it('frees what an ended call held beyond its charge, at once', async () => {
    // Prepare
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 500 },
        { at: 60_000, tokens: 500 },
      ],
      fake,
    );
    await allowance.hold(400, never);

    // Act
    const next = allowance.hold(400, never);
    allowance.release(400, 100);
    await next;

    // Assess: 100 + 400 fits the 500 arrived; no need to wait for the next arrival.
    expect(clock.now).toBe(0);
  });

  it('lets a call go once all has arrived and none runs, whatever it needs', async () => {
    // Prepare: answers charged more than expected used up the share.
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance([{ at: 2_000, tokens: 300 }], fake);
    await allowance.hold(300, never);
    allowance.release(300, 280);

    // Act
    await allowance.hold(250, never);

    // Assess
    expect(clock.now).toBe(2_000);
  });

  it('never lends what it keeps back to a call', async () => {
    // Prepare: 1,000 arrived, 300 kept back for answers on their way.
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 1_000 },
        { at: 5_000, tokens: 500 },
      ],
      fake,
      300,
    );
    await allowance.hold(600, never);

    // Act
    await allowance.hold(500, never);

    // Assess: 300 + 600 + 500 is more than the 1,000 of the first arrival.
    expect(clock.now).toBe(5_000);
  });

  it('brings its arrivals forward when the budget says tokens given back let all it granted be spent sooner', async () => {
    // Prepare: the share's last arrival is at 10 s; another batch gives 6 s of tokens back, and from 2 s on
    // the budget can let everything it granted be spent from 4 s.
    const { clock, fake } = fakeClock();
    const asked: number[] = [];
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 100 },
        { at: 6_000, tokens: 100 },
        { at: 10_000, tokens: 100 },
      ],
      fake,
      0,
      async () => {
        asked.push(clock.now);
        return clock.now >= 2_000 ? 4_000 : 10_000;
      },
    );
    await allowance.hold(100, never);

    // Act
    await allowance.hold(100, never);
    const secondAt = clock.now;
    await allowance.hold(100, never);
    const thirdAt = clock.now;

    // Assess: every arrival comes 6 s sooner (the one due at 6 s when asked, at 2 s); it asked every
    // BRING_FORWARD_CHECK_MS while its last arrival was further off.
    expect([secondAt, thirdAt]).toEqual([2_000, 4_000]);
    const lastAsked = 4_000 - BRING_FORWARD_CHECK_MS - 1;
    expect(asked).toEqual(
      Array.from(
        { length: Math.floor(lastAsked / BRING_FORWARD_CHECK_MS) + 1 },
        (_, index) => index * BRING_FORWARD_CHECK_MS,
      ),
    );
  });

  it('stops asking once a grant made after it stands behind it, and waits for its own arrivals', async () => {
    // Prepare: the budget has granted past the share's last arrival.
    const { clock, fake } = fakeClock();
    let asked = 0;
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 100 },
        { at: 5_000, tokens: 100 },
      ],
      fake,
      0,
      async () => {
        asked += 1;
        return 8_000;
      },
    );
    await allowance.hold(100, never);

    // Act
    await allowance.hold(100, never);

    // Assess
    expect(clock.now).toBe(5_000);
    expect(asked).toBe(1);
  });

  it('keeps asking when the budget says its own last arrival, give or take a fraction of a millisecond', async () => {
    // Prepare: the budget's sum lands a hair after the share's own last arrival, and then tokens come back.
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 100 },
        { at: 5_000, tokens: 100 },
      ],
      fake,
      0,
      async () => (clock.now >= 1_000 ? 3_000 : 5_000.4),
    );
    await allowance.hold(100, never);

    // Act
    await allowance.hold(100, never);

    // Assess
    expect(clock.now).toBe(3_000);
  });

  it('does not ask when its last arrival is near', async () => {
    // Prepare
    const { clock, fake } = fakeClock();
    let asked = 0;
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 100 },
        { at: BRING_FORWARD_CHECK_MS, tokens: 100 },
      ],
      fake,
      0,
      async () => {
        asked += 1;
        return 0;
      },
    );
    await allowance.hold(100, never);

    // Act
    await allowance.hold(100, never);

    // Assess
    expect([clock.now, asked]).toEqual([BRING_FORWARD_CHECK_MS, 0]);
  });

  it.each([
    [
      'alone when the budget can spend all it granted by its last arrival',
      async (): Promise<number> => 5_000,
      true,
    ],
    ['alone when tokens given back let it all be spent sooner', async (): Promise<number> => 2_000, true],
    ['not alone when a grant made after it stands behind it', async (): Promise<number> => 8_000, false],
    [
      'not alone when the budget cannot say',
      async (): Promise<number> => {
        throw new Error('unreachable');
      },
      false,
    ],
    ['not alone without a budget to ask', undefined, false],
  ] as const)('says it is %s', async (_case, spendableFrom, expected) => {
    // Prepare
    const { fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 100 },
        { at: 5_000, tokens: 100 },
      ],
      fake,
      0,
      spendableFrom,
    );

    // Act
    const alone = await allowance.alone();

    // Assess
    expect(alone).toBe(expected);
  });

  it('gives up waiting when the deadline passes', async () => {
    // Prepare
    const { fake } = fakeClock();
    const allowance = new BatchAllowance([{ at: 5_000, tokens: 100 }], fake);
    const deadline = new AbortController();
    deadline.abort(new DOMException('deadline', 'AbortError'));

    // Act
    const waiting = allowance.hold(100, deadline.signal);

    // Assess
    await expect(waiting).rejects.toThrow('deadline');
  });
});
