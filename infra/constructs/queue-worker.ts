import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { visibilityTimeoutFor } from '../../shared/budget/worker-shape.ts';
import { grantConsume } from './key-use.ts';
import { PipelineFunction, type PipelineFunctionProps } from './pipeline-function.ts';
import { SecureQueue } from './secure-queue.ts';

export interface QueueWorkerProps extends Omit<PipelineFunctionProps, 'environment'> {
  /** The function's environment; it is given its own queue, which it may send messages back to. */
  readonly environment: (queue: sqs.IQueue) => Readonly<Record<string, string>>;
  /** Receives before a message goes to the DLQ. */
  readonly maxReceiveCount: number;
  readonly encryptionKey?: kms.IKey | undefined;
  /** How the function is fed: batch size, batching window, concurrency, partial batch responses. */
  readonly eventSource: Pick<
    lambda.EventSourceMappingOptions,
    'batchSize' | 'maxBatchingWindow' | 'maxConcurrency' | 'reportBatchItemFailures'
  >;
}

/**
 * A queue, its DLQ, the function that consumes it and the event source between them. The queue's visibility
 * timeout is derived from the function's timeout, never set beside it, so the two cannot drift apart.
 */
export class QueueWorker extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly function: PipelineFunction;

  constructor(scope: Construct, id: string, props: QueueWorkerProps) {
    super(scope, id);
    const queue = new SecureQueue(this, 'Messages', {
      visibilityTimeout: Duration.seconds(visibilityTimeoutFor(props.timeout.toSeconds())),
      maxReceiveCount: props.maxReceiveCount,
      encryptionKey: props.encryptionKey,
    });
    this.queue = queue.queue;
    this.deadLetterQueue = queue.deadLetterQueue;
    this.function = new PipelineFunction(this, 'Consumer', {
      name: props.name,
      timeout: props.timeout,
      memorySize: props.memorySize,
      overrides: props.overrides,
      environment: props.environment(this.queue),
    });
    // The mapping and its grants made here, not by the CDK's SqsEventSource, whose key grant has no
    // kms:ViaService condition.
    new lambda.EventSourceMapping(this, 'Source', {
      target: this.function.function,
      eventSourceArn: this.queue.queueArn,
      ...props.eventSource,
    });
    grantConsume(this.queue, this.function.function);
  }
}
