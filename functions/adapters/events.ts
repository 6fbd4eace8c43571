import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetQueueAttributesCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ENQUEUE_CONTINUATION, EVENT_SOURCE } from '../../shared/contract/job-events.ts';
import type {
  DeadLetters,
  EnqueueContinuation,
  EventPublisher,
  FinalizeTrigger,
} from '../../shared/core/ports.ts';
import { PipelineError } from '../../shared/errors.ts';

/** Anything that takes events the way EventBridge PutEvents does (the real bus, or the local shim). */
export type PutEvent = (event: {
  source: string;
  detailType: string;
  detail: Record<string, unknown>;
}) => Promise<void>;

export function eventBridgePutEvent(client: EventBridgeClient, eventBusName = 'default'): PutEvent {
  return async ({ source, detailType, detail }) => {
    const result = await client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: eventBusName,
            Source: source,
            DetailType: detailType,
            Detail: JSON.stringify(detail),
          },
        ],
      }),
    );
    if ((result.FailedEntryCount ?? 0) > 0) {
      throw new PipelineError(
        'EVENT_NOT_PUBLISHED',
        `EventBridge refused a ${detailType} event: ${result.Entries?.[0]?.ErrorMessage}`,
      );
    }
  };
}

export class BusEventPublisher implements EventPublisher, EnqueueContinuation {
  constructor(private readonly putEvent: PutEvent) {}

  publish(detailType: string, detail: Record<string, unknown>): Promise<void> {
    return this.putEvent({ source: EVENT_SOURCE, detailType, detail });
  }

  /** A large file goes on in a new enqueue invocation, started by the bus like the upload was. */
  continueLater(jobId: string): Promise<void> {
    return this.publish(ENQUEUE_CONTINUATION, { jobId });
  }
}

/** Finalization runs as its own function, fed by a queue, so it retries on its own and has its own timeout. */
export class QueueFinalizeTrigger implements FinalizeTrigger {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async trigger(jobId: string): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify({ jobId }) }),
    );
  }
}

/** The record queue's DLQ depth, for the stuck-job sweeper. */
export class QueueDeadLetters implements DeadLetters {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async count(): Promise<number> {
    const { Attributes } = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
  }
}
