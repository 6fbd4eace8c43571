/** What the pipeline reads of Bedrock's batch job state change event. */
export interface BatchJobChange {
  readonly jobName: string;
  readonly jobArn: string;
  readonly status: string;
}

/** Bedrock's EventBridge event for a batch inference job that changed state (best effort: the sweeper polls too). */
export const BATCH_JOB_STATE_CHANGE = 'Batch Inference Job State Change';
export const BEDROCK_EVENT_SOURCE = 'aws.bedrock';

/** The rule that hears every batch inference job of the account change state. */
export const batchJobStateChangePattern = {
  source: [BEDROCK_EVENT_SOURCE],
  'detail-type': [BATCH_JOB_STATE_CHANGE],
} as const;

/** The job, its name and its new state, from the event's detail; undefined for a detail without them. */
export function batchJobChangeOf(detail: unknown): BatchJobChange | undefined {
  const { batchJobName, batchJobArn, status } = (detail ?? {}) as Record<string, unknown>;
  if (typeof batchJobName !== 'string' || typeof batchJobArn !== 'string' || typeof status !== 'string')
    return undefined;
  return { jobName: batchJobName, jobArn: batchJobArn, status };
}
