import { setTimeout as sleep } from 'node:timers/promises';

/** Time as the domain sees it: passed in, so tests move it by hand instead of waiting. */
export interface Clock {
  now(): number;
  /** Resolves at `time` (at once if it is past), or rejects when `signal` aborts first. */
  sleepUntil(time: number, signal: AbortSignal): Promise<void>;
}

/** The clock's time in the form the ledger, the manifests and the events keep times in. */
export function isoTime(clock: Pick<Clock, 'now'>): string {
  return new Date(clock.now()).toISOString();
}

export const systemClock: Clock = {
  now: Date.now,
  sleepUntil: async (time, signal) => {
    signal.throwIfAborted();
    const wait = time - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal });
  },
};
