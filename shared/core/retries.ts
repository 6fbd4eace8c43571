import type { JobRetries } from './model.ts';

/** A job's counters of what its records went through: retries, waits, receives, calls. */

/** A job's retry counters before anything was retried, and what a batch adds when it retried nothing. */
export const NO_RETRIES: JobRetries = {
  retried: 0,
  bedrockThrottles: 0,
  budgetWaits: 0,
  sentBackToWait: 0,
  receives: 0,
  bedrockCalls: 0,
};

/** The names of a job's counters, each a plain sum. */
export const RETRY_COUNTERS = [
  'retried',
  'bedrockThrottles',
  'budgetWaits',
  'sentBackToWait',
  'receives',
  'bedrockCalls',
] as const satisfies ReadonlyArray<keyof JobRetries>;

/** Counters added up: a job's so far and what a batch adds. */
export function addRetries(total: JobRetries, more: Partial<JobRetries>): JobRetries {
  const sum: { -readonly [Name in keyof JobRetries]: number } = { ...total };
  for (const name of RETRY_COUNTERS) sum[name] = total[name] + (more[name] ?? 0);
  return sum;
}
