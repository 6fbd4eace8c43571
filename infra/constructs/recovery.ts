import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { EnvironmentOf, sweeperSettings } from '../../shared/config.ts';
import { RETRY_LAYERS } from '../../shared/retry-layers.ts';
import type { FunctionOverrides } from '../escape-hatches.ts';
import { grantSend } from './key-use.ts';
import { LONG_STEP_TIMEOUT, PipelineFunction } from './pipeline-function.ts';
import type { Storage } from './storage.ts';

export interface RecoveryProps {
  readonly storage: Storage;
  readonly recordDeadLetters: sqs.IQueue;
  readonly finalizeQueue: sqs.IQueue;
  /** Minutes without progress before a job is reported stuck. */
  readonly stuckAfterMinutes: number;
  /** The team's props for every function of the pipeline. */
  readonly functionProps?: FunctionOverrides | undefined;
}

/**
 * The sweeper, every five minutes: it takes up steps that stopped (a read, a finalization, an unsent event),
 * reports stuck jobs and counts the record DLQ.
 */
export class Recovery extends Construct {
  readonly sweeper: PipelineFunction;

  constructor(scope: Construct, id: string, props: RecoveryProps) {
    super(scope, id);
    const { storage } = props;
    this.sweeper = new PipelineFunction(this, 'Sweeper', {
      name: 'sweeper',
      timeout: Duration.minutes(1),
      memorySize: 256,
      overrides: props.functionProps,
      environment: {
        LEDGER_TABLE_NAME: storage.ledger.tableName,
        RECORD_DLQ_URL: props.recordDeadLetters.queueUrl,
        FINALIZE_QUEUE_URL: props.finalizeQueue.queueUrl,
        // Longer than the enqueue and finalizer functions can run: a step this quiet has stopped.
        RESUME_AFTER_MINUTES: String(LONG_STEP_TIMEOUT.toMinutes() + 1),
        STUCK_AFTER_MINUTES: String(props.stuckAfterMinutes),
      } satisfies EnvironmentOf<typeof sweeperSettings>,
    });
    const sweeper = this.sweeper;
    storage.grantLedger(sweeper, ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:Query']);
    grantSend(props.finalizeQueue, sweeper.function);
    props.recordDeadLetters.grant(sweeper.function, 'sqs:GetQueueAttributes');
    sweeper.publishEvents();
    new events.Rule(this, 'Schedule', {
      description: 'Takes up stopped steps, looks for stuck jobs and DLQ messages',
      schedule: events.Schedule.rate(Duration.minutes(5)),
      targets: [new targets.LambdaFunction(sweeper.function, { retryAttempts: RETRY_LAYERS.sweeperRetries })],
    });
  }
}
