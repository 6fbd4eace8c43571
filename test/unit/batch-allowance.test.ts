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

  it("starts calls on what Bedrock reserves for running ones, leaving the largest running call's debt free", async () => {
    // Prepare: 1,000 arrived; calls reserving 300 each, expected to be charged 500 (200 owed when they end).
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 1_000 },
        { at: 4_000, tokens: 500 },
      ],
      fake,
    );

    // Act
    await allowance.hold(300, never, 200);
    await allowance.hold(300, never, 200);
    const secondAt = clock.now;
    await allowance.hold(300, never, 200);
    const thirdAt = clock.now;

    // Assess: 300 + 300 + 200 fits the 1,000 at once; a third needs 300 + 300 + 300 + 200, after 4 s.
    expect([secondAt, thirdAt]).toEqual([0, 4_000]);
  });

  it("pays what an ended call owed beyond its hold from the share's later arrivals", async () => {
    // Prepare: two calls running on the 1,000 arrived, each reserving 300 and owing 200.
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance(
      [
        { at: 0, tokens: 1_000 },
        { at: 4_000, tokens: 500 },
        { at: 9_000, tokens: 500 },
      ],
      fake,
    );
    await allowance.hold(300, never, 200);
    await allowance.hold(300, never, 200);

    // Act: both are charged 500; the next call owes nothing.
    allowance.release(300, 500, 200);
    allowance.release(300, 500, 200);
    await allowance.hold(300, never);
    const nextAt = clock.now;
    await allowance.hold(300, never);

    // Assess: 1,000 held by the ended calls: the next fits once 1,500 has arrived, the one after at 2,000.
    expect([nextAt, clock.now]).toEqual([4_000, 9_000]);
  });

  describe.each([
    { case: 'an earlier call ended as expected', charged: 500, goesAt: 0 },
    { case: 'an earlier call ended charged more than its share covers', charged: 800, goesAt: 4_000 },
  ])('a held call checked again just before it is sent, when $case', ({ charged, goesAt }) => {
    it(`goes at ${goesAt} ms`, async () => {
      // Prepare: two calls held on the 1,000 arrived (300 each, owing 200); the second is not sent yet.
      const { clock, fake } = fakeClock();
      const allowance = new BatchAllowance(
        [
          { at: 0, tokens: 1_000 },
          { at: 4_000, tokens: 600 },
        ],
        fake,
      );
      await allowance.hold(300, never, 200);
      await allowance.hold(300, never, 200);

      // Act: the first ends while the second's record is leased.
      allowance.release(300, charged, 200);
      await allowance.clear(never, 200);

      // Assess: 500 + 300 fits the 1,000; 800 + 300 waits for the next arrival.
      expect(clock.now).toBe(goesAt);
    });
  });

  it('lets a held call go when it is overdrawn but no more of the share will arrive', async () => {
    // Prepare: one arrival; the first call was charged far more than expected.
    const { clock, fake } = fakeClock();
    const allowance = new BatchAllowance([{ at: 0, tokens: 1_000 }], fake);
    await allowance.hold(300, never, 200);
    await allowance.hold(300, never, 200);
    allowance.release(300, 1_500, 200);

    // Act
    await allowance.clear(never, 200);

    // Assess: waiting would not help; the failure table answers a throttle if Bedrock refuses it.
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
