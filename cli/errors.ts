import { PipelineError } from '../shared/errors.ts';

/** A mistake in how the command was called or what it was given: a message, exit code 2, no stack trace. */
export class UsageError extends PipelineError {
  constructor(message: string, fix?: string) {
    super('USAGE', message, fix === undefined ? {} : { fix });
  }
}

/** The job itself failed (not a record of it): exit code 1. The local runner reports it with the same code. */
export class JobFailedError extends PipelineError {
  constructor(message: string) {
    super('JOB_FAILED', message);
  }
}
