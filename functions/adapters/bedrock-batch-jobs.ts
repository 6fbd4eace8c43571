import {
  type BedrockClient,
  ConflictException,
  CreateModelInvocationJobCommand,
  GetModelInvocationJobCommand,
  StopModelInvocationJobCommand,
} from '@aws-sdk/client-bedrock';
import type { BatchJobRequest, BatchJobs } from '../../shared/core/ports.ts';

/**
 * Bedrock batch inference through the AWS SDK's control-plane client. Jobs run as `roleArn`, the service role
 * that reads the staged input and writes the output (the caller needs iam:PassRole on it).
 */
export class BedrockBatchJobs implements BatchJobs {
  constructor(
    private readonly client: BedrockClient,
    private readonly roleArn: string,
  ) {}

  async submit(request: BatchJobRequest): Promise<string> {
    const { jobArn } = await this.client.send(
      new CreateModelInvocationJobCommand({
        jobName: request.jobName,
        roleArn: this.roleArn,
        modelId: request.modelId,
        inputDataConfig: { s3InputDataConfig: { s3Uri: request.inputUri, s3InputFormat: 'JSONL' } },
        outputDataConfig: { s3OutputDataConfig: { s3Uri: request.outputUri } },
        timeoutDurationInHours: request.timeoutHours,
        clientRequestToken: request.clientRequestToken,
      }),
    );
    if (jobArn === undefined) throw new Error('CreateModelInvocationJob answered without a job ARN');
    return jobArn;
  }

  async describe(jobArn: string): Promise<{ status: string; message: string | undefined }> {
    const job = await this.client.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
    return { status: job.status ?? 'Submitted', message: job.message };
  }

  async stop(jobArn: string): Promise<void> {
    try {
      await this.client.send(new StopModelInvocationJobCommand({ jobIdentifier: jobArn }));
    } catch (error) {
      // Already stopping or ended: what stopping was for has happened.
      if (!(error instanceof ConflictException)) throw error;
    }
  }
}
