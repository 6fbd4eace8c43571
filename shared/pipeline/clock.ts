import { setTimeout as sleep } from 'node:timers/promises';

/** Time as the domain sees it: passed in, so tests move it by hand instead of waiting. */
export interface Clock {
  now(): number;
  /** Resolves at `time` (at once if it is past), or rejects when `signal` aborts first. */
  sleepUntil(time: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: Date.now,
  sleepUntil: async (time, signal) => {
    signal.throwIfAborted();
    const wait = time - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal });
  },
};
