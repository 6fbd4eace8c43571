import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface SecureQueueProps {
  /** At least six times the consuming function's timeout, as AWS advises for Lambda event sources. */
  readonly visibilityTimeout: Duration;
  /** Receives before a message goes to the DLQ; 5 or more (1 is unsafe). */
  readonly maxReceiveCount: number;
  /** A customer-managed key; SQS-managed encryption when absent. */
  readonly encryptionKey?: kms.IKey | undefined;
}

/** A queue and its DLQ, both encrypted and TLS-only, the DLQ keeping messages for the longest SQS allows. */
export class SecureQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: SecureQueueProps) {
    super(scope, id);
    if (props.maxReceiveCount < 5)
      throw new Error(`${id}: maxReceiveCount must be 5 or more, not ${props.maxReceiveCount}.`);
    const encryption =
      props.encryptionKey === undefined
        ? { encryption: sqs.QueueEncryption.SQS_MANAGED }
        : { encryption: sqs.QueueEncryption.KMS, encryptionMasterKey: props.encryptionKey };
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      ...encryption,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...encryption,
      enforceSSL: true,
      visibilityTimeout: props.visibilityTimeout,
      retentionPeriod: Duration.days(14),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}
