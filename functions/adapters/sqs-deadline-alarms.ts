import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeadlineAlarms } from '../../shared/core/ports.ts';
import { alarmDelaySeconds, type DeadlineAlarm } from '../../shared/messages/deadline-alarm.ts';

/** Deadline alarms as delayed SQS messages on the queue the batch watcher reads. */
export class SqsDeadlineAlarms implements DeadlineAlarms {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async set(alarm: DeadlineAlarm, now: number): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(alarm),
        DelaySeconds: alarmDelaySeconds(alarm.at, now),
      }),
    );
  }
}
