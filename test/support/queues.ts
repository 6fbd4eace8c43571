import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { vi } from 'vitest';

/** Messages a queue holds in any state: visible, in flight or delayed. */
export async function messagesIn(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return Object.values(Attributes).reduce((sum, value) => sum + Number(value), 0);
}

/** Waits until every queue named is empty; on time out, fails with the depths it last saw. */
export async function untilEmpty(
  sqs: SQSClient,
  queues: Readonly<Record<string, string>>,
  timeoutMs = 15_000,
): Promise<void> {
  const empty = Object.fromEntries(Object.keys(queues).map((name) => [name, 0]));
  await vi.waitFor(
    async () => {
      const depths = Object.fromEntries(
        await Promise.all(
          Object.entries(queues).map(async ([name, url]) => [name, await messagesIn(sqs, url)] as const),
        ),
      );
      if (JSON.stringify(depths) !== JSON.stringify(empty))
        throw new Error(`queues not empty: ${JSON.stringify(depths)}`);
    },
    { timeout: timeoutMs, interval: 200 },
  );
}
