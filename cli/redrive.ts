import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';

type Sqs = Pick<SQSClient, 'send'>;

export interface Redrive {
  /** How the messages moved: by an SQS move task, or one by one. */
  readonly how: 'move-task' | 'one-by-one';
  /** Messages moved, or for a move task the messages waiting when it started. */
  readonly messages: number;
  readonly taskHandle?: string;
}

/**
 * Moves a dead-letter queue's messages back to its source queue. On AWS, SQS does it itself with a move task:
 * every message, however many, at SQS's own pace, without the receive loop's early stops on an empty
 * receive. The local cloud has no move tasks: there the messages are moved one by one.
 */
export async function redrive(
  sqs: Sqs,
  queues: { readonly sourceUrl: string; readonly deadLetterUrl: string },
  onAws: boolean,
): Promise<Redrive> {
  if (!onAws) return { how: 'one-by-one', messages: await moveOneByOne(sqs, queues) };
  const [source, deadLetters] = await Promise.all([
    attributesOf(sqs, queues.sourceUrl),
    attributesOf(sqs, queues.deadLetterUrl),
  ]);
  const { TaskHandle } = await sqs.send(
    new StartMessageMoveTaskCommand({ SourceArn: deadLetters.arn, DestinationArn: source.arn }),
  );
  return {
    how: 'move-task',
    messages: deadLetters.messages,
    ...(TaskHandle === undefined ? {} : { taskHandle: TaskHandle }),
  };
}

async function attributesOf(sqs: Sqs, queueUrl: string): Promise<{ arn: string; messages: number }> {
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages'],
    }),
  );
  if (Attributes.QueueArn === undefined) throw new Error(`SQS gave no ARN for ${queueUrl}`);
  return { arn: Attributes.QueueArn, messages: Number(Attributes.ApproximateNumberOfMessages ?? 0) };
}

async function moveOneByOne(
  sqs: Sqs,
  queues: { readonly sourceUrl: string; readonly deadLetterUrl: string },
): Promise<number> {
  let moved = 0;
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queues.deadLetterUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
      }),
    );
    if (Messages.length === 0) return moved;
    for (const message of Messages) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queues.sourceUrl, MessageBody: message.Body ?? '' }));
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: queues.deadLetterUrl, ReceiptHandle: message.ReceiptHandle }),
      );
      moved += 1;
    }
  }
}
