import { z } from 'zod';
import { PipelineError } from '../errors.ts';

/** Version 1: the job whose batch-lane deadline it is, and the deadline (epoch ms). */
const deadlineAlarmV1 = z.strictObject({
  v: z.literal(1),
  jobId: z.string().min(1),
  at: z.number().int().nonnegative(),
});

/**
 * The SQS message that wakes the batch watcher at a job's deadline. SQS delays a message 15 minutes at most,
 * so an alarm further off is sent again, each time nearer, until its time.
 */
export type DeadlineAlarm = z.infer<typeof deadlineAlarmV1>;

export const DEADLINE_ALARM_VERSION = 1;

/** The longest delay SQS gives one message. */
export const MAX_ALARM_DELAY_SECONDS = 900;

/** Seconds to delay an alarm for `at` sent at `now`: all of the wait, up to the longest SQS gives. */
export function alarmDelaySeconds(at: number, now: number): number {
  return Math.min(MAX_ALARM_DELAY_SECONDS, Math.max(0, Math.ceil((at - now) / 1000)));
}

export function parseDeadlineAlarm(body: string): DeadlineAlarm {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new PipelineError('INVALID_MESSAGE', 'A deadline alarm is not JSON.', { cause: error });
  }
  const parsed = deadlineAlarmV1.safeParse(value);
  if (!parsed.success)
    throw new PipelineError('INVALID_MESSAGE', `A deadline alarm is malformed: ${parsed.error.message}`);
  return parsed.data;
}
