import { lineKey } from './storage-layout.ts';

/**
 * The one DynamoDB table the pipeline keeps its state in, as every user of it sees it: the ledger and the
 * token budget write its items, the CDK stack and the local cloud create it. Items, by key:
 * - `JOB#<jobId>` / `JOB`: a job and its counters (`activeFlag` while it is unfinished or its event unsent,
 *   `jobList` always);
 * - `JOB#<jobId>` / `REC#<line, 10 digits>`: a record that has started or finished;
 * - `JOB#<jobId>` / `ID#<recordId>`: a record id claimed by a line;
 * - `BUDGET#<region>#<modelId>` / `BUCKET`: a token bucket shared by all workers;
 * - `SPEND#<YYYY-MM-DD>` / `DAY`: the cost counted on one day (UTC) over every job, for the daily cap.
 */
export const LEDGER_TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** DynamoDB TTL removes an item after this epoch second. */
  timeToLive: 'expiresAt',
  /** The sparse index of unfinished jobs: only job items carry its key, and only while they need the sweeper. */
  activeJobsIndex: { name: 'active-jobs', partitionKey: 'activeFlag', sortKey: 'createdAt', value: 'ACTIVE' },
  /**
   * Every job by when it was created, with its input's bucket and key: `jobs` lists the newest, and a job is
   * found by the object it runs. Job items are few and the key never changes, so one partition holds them.
   */
  recentJobsIndex: {
    name: 'recent-jobs',
    partitionKey: 'jobList',
    sortKey: 'createdAt',
    value: 'JOBS',
    projected: ['bucket', 'key'],
  },
} as const;

export function jobKey(jobId: string) {
  return { pk: `JOB#${jobId}`, sk: 'JOB' };
}

export function recordKey(jobId: string, lineNumber: number) {
  return { pk: `JOB#${jobId}`, sk: `REC#${lineKey(lineNumber)}` };
}

/** The line number of a record item's sort key. */
export function lineNumberOfRecordKey(sk: unknown): number {
  return Number(String(sk).slice('REC#'.length));
}

export function recordIdKey(jobId: string, recordId: string) {
  return { pk: `JOB#${jobId}`, sk: `ID#${recordId}` };
}

export function budgetKey(key: string) {
  return { pk: `BUDGET#${key}`, sk: 'BUCKET' };
}

export function dailySpendKey(day: string) {
  return { pk: `SPEND#${day}`, sk: 'DAY' };
}

/** The job id of a job item's partition key. */
export function jobIdOfKey(pk: unknown): string {
  return String(pk).slice('JOB#'.length);
}

/** The day, in UTC (YYYY-MM-DD), that spending at `at` counts toward for the daily cap. */
export function spendingDayOf(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
