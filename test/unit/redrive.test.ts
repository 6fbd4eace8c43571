import { GetQueueAttributesCommand, type SQSClient, StartMessageMoveTaskCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { redrive } from '../../cli/redrive.ts';

const QUEUES = {
  sourceUrl: 'https://sqs.us-west-2.amazonaws.com/123456789012/records',
  deadLetterUrl: 'https://sqs.us-west-2.amazonaws.com/123456789012/records-dlq',
};

/** SQS as a deployed stack's queues answer: each queue's ARN and depth, and a move task's handle. */
function awsQueues() {
  const sent: unknown[] = [];
  const sqs: Pick<SQSClient, 'send'> = {
    send: (async (command: unknown) => {
      sent.push(command);
      if (command instanceof GetQueueAttributesCommand) {
        const name = command.input.QueueUrl?.split('/').at(-1);
        return {
          Attributes: {
            QueueArn: `arn:aws:sqs:us-west-2:123456789012:${name}`,
            ApproximateNumberOfMessages: name === 'records-dlq' ? '7' : '0',
          },
        };
      }
      if (command instanceof StartMessageMoveTaskCommand) return { TaskHandle: 'task-1' };
      throw new Error(`unexpected ${String(command)}`);
    }) as SQSClient['send'],
  };
  return { sqs, sent };
}

describe('redrive on AWS', () => {
  it('has SQS move every dead letter back to the record queue with one move task', async () => {
    // Prepare
    const { sqs, sent } = awsQueues();

    // Act
    const moved = await redrive(sqs, QUEUES, true);

    // Assess
    expect(moved).toEqual({ how: 'move-task', messages: 7, taskHandle: 'task-1' });
    const task = sent.find((command) => command instanceof StartMessageMoveTaskCommand);
    expect((task as StartMessageMoveTaskCommand).input).toEqual({
      SourceArn: 'arn:aws:sqs:us-west-2:123456789012:records-dlq',
      DestinationArn: 'arn:aws:sqs:us-west-2:123456789012:records',
    });
  });
});
