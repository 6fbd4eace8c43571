import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { STACK_OUTPUTS } from '../shared/stack-outputs.ts';
import { BedrockBatchPipeline } from './bedrock-batch-pipeline.ts';
import type { BedrockBatchPipelineProps } from './bedrock-batch-pipeline-props.ts';

export interface PipelineStackProps extends StackProps {
  readonly pipeline: BedrockBatchPipelineProps;
}

/** This repository's own deployment: the pipeline construct and the outputs `bedrock-batch --stack` reads. */
export class PipelineStack extends Stack {
  readonly pipeline: BedrockBatchPipeline;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    this.pipeline = new BedrockBatchPipeline(this, 'Pipeline', props.pipeline);
    new CfnOutput(this, STACK_OUTPUTS.bucket, { value: this.pipeline.bucket.bucketName });
    new CfnOutput(this, STACK_OUTPUTS.tableName, { value: this.pipeline.ledgerTable.tableName });
    new CfnOutput(this, STACK_OUTPUTS.recordQueueUrl, { value: this.pipeline.recordQueue.queueUrl });
    new CfnOutput(this, STACK_OUTPUTS.recordDlqUrl, { value: this.pipeline.recordDeadLetterQueue.queueUrl });
    const batchesApi = this.pipeline.messageBatchesApi;
    if (batchesApi !== undefined)
      new CfnOutput(this, STACK_OUTPUTS.messageBatchesApiUrl, {
        value: batchesApi.url,
        description:
          "Anthropic's Message Batches API: new Anthropic({ baseURL, fetch: signedFetch({ region }) })",
      });
  }
}
