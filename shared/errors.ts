/**
 * One base class for every error the pipeline raises itself. Subclasses carry a stable `code` that the
 * failure table (failures.ts) and the output records use, and a `fix`: the sentence a user needs to act.
 */
export class PipelineError extends Error {
  readonly code: string;
  readonly fix: string | undefined;

  constructor(code: string, message: string, options: { fix?: string; cause?: unknown } = {}) {
    super(options.fix === undefined ? message : `${message} ${options.fix}`, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.fix = options.fix;
  }
}

/** A setting of a function or a job is missing or bad; raised at cold start or when a job starts. */
export class ConfigurationError extends PipelineError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options: { cause?: unknown } = {}) {
    super('INVALID_CONFIGURATION', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, options);
    this.problems = problems;
  }
}

/** The model, endpoint and region asked for cannot be called together. */
export class ModelSelectionError extends PipelineError {}

/** A record is well-formed JSON but cannot be sent to Bedrock as it is (too long, bad beta, bad max_tokens). */
export class RecordRejectedError extends PipelineError {}

/** The input object is not the one its job was created for any more: it was uploaded again (or deleted). */
export class InputChangedError extends PipelineError {
  static readonly CODE = 'INPUT_CHANGED';

  constructor(location: { bucket: string; key: string }, options: { cause?: unknown } = {}) {
    super(InputChangedError.CODE, `s3://${location.bucket}/${location.key} changed while its job ran.`, {
      ...options,
      fix: 'The new upload runs as a job of its own; this job keeps to the version it started with.',
    });
  }
}
