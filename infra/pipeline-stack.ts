import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { STACK_OUTPUTS } from '../shared/stack-outputs.ts';
import { BatchLane } from './constructs/batch-lane.ts';
import { Finalize } from './constructs/finalize.ts';
import { Ingest } from './constructs/ingest.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { Processing } from './constructs/processing.ts';
import { Recovery } from './constructs/recovery.ts';
import { Storage } from './constructs/storage.ts';
import { type PipelinePropsInput, pipelineSettings } from './props.ts';

export interface PipelineStackProps extends StackProps {
  readonly pipeline: PipelinePropsInput;
}

/**
 * The whole pipeline, in the order a file travels: storage, ingest (upload to queued or staged records),
 * processing (records to results), the batch lane (staged records through Bedrock batch inference), finalize
 * (results to the output), recovery (the sweeper), and monitoring over all.
 */
export class PipelineStack extends Stack {
  readonly storage: Storage;
  readonly ingest: Ingest;
  readonly processing: Processing;
  readonly finalize: Finalize;
  readonly recovery: Recovery;
  readonly batchLane: BatchLane;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const settings = pipelineSettings(props.pipeline);
    this.storage = new Storage(this, 'Storage', {
      useKms: settings.useKms,
      retentionDays: settings.retentionDays,
    });
    this.finalize = new Finalize(this, 'Finalize', { storage: this.storage });
    const finalizeQueue = this.finalize.jobs.queue;
    this.processing = new Processing(this, 'Processing', { settings, storage: this.storage, finalizeQueue });
    const records = this.processing.records;
    this.batchLane = new BatchLane(this, 'BatchLane', {
      settings,
      storage: this.storage,
      recordQueue: records.queue,
      finalizeQueue,
    });
    this.ingest = new Ingest(this, 'Ingest', {
      settings,
      storage: this.storage,
      recordQueue: records.queue,
      finalizeQueue,
      batchLane: this.batchLane,
    });
    this.recovery = new Recovery(this, 'Recovery', {
      storage: this.storage,
      recordDeadLetters: records.deadLetterQueue,
      finalizeQueue,
      stuckAfterMinutes: settings.stuckAfterMinutes,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      recordQueue: records.queue,
      recordDeadLetters: records.deadLetterQueue,
      finalizeDeadLetters: this.finalize.jobs.deadLetterQueue,
      enqueueFailures: this.ingest.failures,
      functions: {
        enqueue: this.ingest.enqueue.function,
        worker: records.function.function,
        finalizer: this.finalize.jobs.function.function,
        sweeper: this.recovery.sweeper.function,
        batch: this.batchLane.watcher.function,
      },
      modelIds: settings.resolvedModels.map((model) => model.modelId),
      oldestMessageAlarmAge: Duration.seconds(settings.oldestRecordAlarmSeconds),
      alarmEmail: settings.alarmEmail,
      alarmTopicArn: settings.alarmTopicArn,
    });

    new CfnOutput(this, STACK_OUTPUTS.bucket, { value: this.storage.bucket.bucketName });
    new CfnOutput(this, STACK_OUTPUTS.tableName, { value: this.storage.ledger.tableName });
    new CfnOutput(this, STACK_OUTPUTS.recordQueueUrl, { value: records.queue.queueUrl });
    new CfnOutput(this, STACK_OUTPUTS.recordDlqUrl, { value: records.deadLetterQueue.queueUrl });
  }
}
