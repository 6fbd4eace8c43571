import type { JobStatus } from '../core/model.ts';

/** The source of every event the pipeline publishes on its bus. */
export const EVENT_SOURCE = 'bedrock-batch-pipeline';
/** The pipeline's own event that hands the rest of a large file to a new enqueue invocation. */
export const ENQUEUE_CONTINUATION = 'Enqueue Continuation';

/**
 * The events the pipeline publishes about a job (source `bedrock-batch-pipeline`), by detail type: what rules
 * on the bus match, so they change only with a new name.
 */
export const JOB_STARTED = 'Batch Job Started';
export const JOB_COMPLETED = 'Batch Job Completed';
export const JOB_CANCELED = 'Batch Job Canceled';
/** Its input was replaced under it: the newer upload is a job of its own, named in the detail. */
export const JOB_SUPERSEDED = 'Batch Job Superseded';
export const JOB_FAILED = 'Batch Job Failed';

type EndedStatus = Extract<JobStatus, 'completed' | 'canceled' | 'superseded' | 'failed'>;

/** The event that says how a job ended, by the status it ended in. */
export const JOB_END_EVENTS: Readonly<Record<EndedStatus, string>> = {
  completed: JOB_COMPLETED,
  canceled: JOB_CANCELED,
  superseded: JOB_SUPERSEDED,
  failed: JOB_FAILED,
};

/** Every event that ends a job: one of them comes once per job. */
export const JOB_ENDINGS: readonly string[] = Object.values(JOB_END_EVENTS);
