// Over 250 lines: the one failure table (Bedrock's errors, transport errors, our own), the classifier and
// the retry decision stay together so that every retry decision is made in one place.
import { PipelineError } from './errors.ts';

/**
 * retryable: transient, retry with backoff up to the attempt limit.
 * limited:   may be transient (model timeouts, model errors) or may fail every time: a few attempts only.
 * later:     a quota outside our control: retry after a longer, fixed delay.
 * never:     retrying cannot help; write the error record at once.
 */
export type RetryClass = 'retryable' | 'limited' | 'later' | 'never';

/** The error `type` an Anthropic Message Batches result carries, for callers who brought that format. */
export const ANTHROPIC_ERROR_TYPES = [
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'request_too_large',
  'rate_limit_error',
  'api_error',
  'timeout_error',
  'overloaded_error',
] as const;
export type AnthropicErrorType = (typeof ANTHROPIC_ERROR_TYPES)[number];

interface FailureRule {
  readonly retry: RetryClass;
  /** The status Bedrock answers with, or the nearest one for failures that never reached it. */
  readonly httpStatus: number;
  readonly anthropicType: AnthropicErrorType;
  /** A Bedrock quota throttle: lowers the shared budget's rate (ours never does). */
  readonly throttle?: true;
  /** Bedrock's tokens-per-day quota is spent: the record waits for it instead of spending an attempt. */
  readonly dailyQuota?: true;
  /** Bedrock does not take the requested service tier for the model: the call is made again on default. */
  readonly tierRefused?: true;
  readonly fix?: string;
}

const TRANSPORT: FailureRule = { retry: 'retryable', httpStatus: 503, anthropicType: 'api_error' };
const INPUT: FailureRule = { retry: 'never', httpStatus: 400, anthropicType: 'invalid_request_error' };

/** Bedrock's own errors, keyed by the exception name it puts in `x-amzn-ErrorType` (the SDK's `error.name`). */
const BEDROCK_FAILURES = {
  ThrottlingException: {
    retry: 'retryable',
    httpStatus: 429,
    anthropicType: 'rate_limit_error',
    throttle: true,
  },
  ModelNotReadyException: { retry: 'retryable', httpStatus: 429, anthropicType: 'overloaded_error' },
  ServiceUnavailableException: { retry: 'retryable', httpStatus: 503, anthropicType: 'overloaded_error' },
  InternalServerException: { retry: 'retryable', httpStatus: 500, anthropicType: 'api_error' },
  ModelTimeoutException: { retry: 'limited', httpStatus: 408, anthropicType: 'timeout_error' },
  ModelErrorException: { retry: 'limited', httpStatus: 424, anthropicType: 'api_error' },
  ServiceQuotaExceededException: {
    retry: 'later',
    httpStatus: 400,
    anthropicType: 'rate_limit_error',
    fix: 'Ask for a higher Bedrock quota in Service Quotas if this persists.',
  },
  ValidationException: {
    ...INPUT,
    fix: 'Check the model id against the region (a full id such as global.anthropic.claude-opus-4-6-v1), the body fields and the input length.',
  },
  AccessDeniedException: {
    retry: 'never',
    httpStatus: 403,
    anthropicType: 'permission_error',
    fix: 'Allow bedrock:InvokeModel on the inference-profile and foundation-model ARNs, and enable model access in the Bedrock console.',
  },
  UnrecognizedClientException: {
    retry: 'never',
    httpStatus: 403,
    anthropicType: 'authentication_error',
    fix: 'Bedrock authenticates with AWS IAM credentials (SigV4), not an Anthropic API key (x-api-key): configure the AWS credential chain.',
  },
  ConflictException: {
    retry: 'never',
    httpStatus: 400,
    anthropicType: 'invalid_request_error',
    fix: 'A batch job cannot take this change in its state (it is ending or has ended), or its client request token was used with other settings.',
  },
  ResourceNotFoundException: {
    retry: 'never',
    httpStatus: 404,
    anthropicType: 'not_found_error',
    fix: 'The model id does not exist in this region: use a full id such as global.anthropic.claude-opus-4-6-v1.',
  },
} as const satisfies Record<string, FailureRule>;

export type BedrockErrorName = keyof typeof BEDROCK_FAILURES;

/** The HTTP status Bedrock answers an error with (the local stand-in answers the same). */
export function bedrockErrorStatus(name: BedrockErrorName): number {
  return BEDROCK_FAILURES[name].httpStatus;
}

/**
 * The one table every retry decision goes through: Bedrock's errors (the InvokeModel error list),
 * Node transport error codes, and our own error codes.
 */
const FAILURE_TABLE: Readonly<Record<string, FailureRule>> = {
  ...BEDROCK_FAILURES,
  // Failures that never got an HTTP answer: the SDK's request timeout, our deadline abort, broken sockets.
  TimeoutError: { ...TRANSPORT, anthropicType: 'timeout_error' },
  AbortError: TRANSPORT,
  ECONNRESET: TRANSPORT,
  ECONNREFUSED: TRANSPORT,
  ETIMEDOUT: TRANSPORT,
  EPIPE: TRANSPORT,
  EAI_AGAIN: TRANSPORT,
  ERR_HTTP2_STREAM_ERROR: TRANSPORT,
  ERR_HTTP2_GOAWAY_SESSION: TRANSPORT,
  // A ThrottlingException whose message names the daily quota: waiting seconds does not help.
  DailyTokenQuotaExceeded: {
    retry: 'later',
    httpStatus: 429,
    anthropicType: 'rate_limit_error',
    dailyQuota: true,
    fix: "Bedrock's tokens-per-day quota is spent; records wait for it. Ask for a higher daily quota in Service Quotas if this recurs.",
  },
  // A ValidationException whose message says the model does not take the service tier asked for.
  ServiceTierNotSupported: {
    ...INPUT,
    tierRefused: true,
    fix: 'Ask for a tier the model takes (bedrock-batch models lists them), or the default tier.',
  },
  // Ours.
  BODY_TOO_LARGE: { ...INPUT, httpStatus: 413, anthropicType: 'request_too_large' },
  LINE_TOO_LARGE: { ...INPUT, httpStatus: 413, anthropicType: 'request_too_large' },
  INPUT_CHANGED: { ...INPUT, httpStatus: 412 },
};

/** Anything else we raise ourselves is a problem with the input or the settings: retrying cannot fix it. */
const OWN_ERROR_DEFAULT = INPUT;

/** What a failure is, in the terms the worker, the output records and the metrics need. */
export interface Failure {
  readonly code: string;
  readonly message: string;
  readonly httpStatus: number;
  readonly retry: RetryClass;
  readonly anthropicType: AnthropicErrorType;
  readonly throttle: boolean;
  readonly dailyQuota: boolean;
  readonly tierRefused: boolean;
  /** Bedrock answered with an error status: the call was refused or failed there, and nothing is charged. */
  readonly answered: boolean;
}

/** Errors Bedrock names alike that call for different handling, told apart by their message. */
const REFINEMENTS: ReadonlyArray<{ name: string; message: RegExp; rule: string }> = [
  { name: 'ThrottlingException', message: /tokens per day/i, rule: 'DailyTokenQuotaExceeded' },
  { name: 'ValidationException', message: /service tier is not supported/i, rule: 'ServiceTierNotSupported' },
];

export function classifyFailure(error: unknown): Failure {
  const { name, code, status, message } = describe(error);
  const refined = REFINEMENTS.find(
    (refinement) => refinement.name === name && refinement.message.test(message),
  );
  const rule =
    (refined === undefined ? undefined : FAILURE_TABLE[refined.rule]) ??
    (name === undefined ? undefined : FAILURE_TABLE[name]) ??
    (code === undefined ? undefined : FAILURE_TABLE[code]) ??
    (error instanceof PipelineError ? OWN_ERROR_DEFAULT : ruleForStatus(status));
  const fix = rule.fix !== undefined && !message.includes(rule.fix) ? ` ${rule.fix}` : '';
  return {
    code: (error instanceof PipelineError ? code : name) ?? code ?? 'UnknownError',
    message: `${message}${fix}`,
    httpStatus: status ?? rule.httpStatus,
    retry: rule.retry,
    anthropicType: rule.anthropicType,
    throttle: rule.throttle === true,
    dailyQuota: rule.dailyQuota === true,
    tierRefused: rule.tierRefused === true,
    answered: status !== undefined,
  };
}

/** Services answer unknown errors with a status; with none (a bug, an unknown socket error) try a few times. */
function ruleForStatus(status: number | undefined): FailureRule {
  if (status === undefined) return { retry: 'limited', httpStatus: 500, anthropicType: 'api_error' };
  if (status === 429) return { retry: 'retryable', httpStatus: status, anthropicType: 'rate_limit_error' };
  if (status >= 500) return { retry: 'retryable', httpStatus: status, anthropicType: 'api_error' };
  return { ...INPUT, httpStatus: status };
}

function describe(error: unknown): {
  name: string | undefined;
  code: string | undefined;
  status: number | undefined;
  message: string;
} {
  if (typeof error !== 'object' || error === null) {
    return { name: undefined, code: undefined, status: undefined, message: String(error) };
  }
  const candidate = error as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const status = candidate.$metadata?.httpStatusCode;
  return {
    name: typeof candidate.name === 'string' && candidate.name !== 'Error' ? candidate.name : undefined,
    code: typeof candidate.code === 'string' ? candidate.code : undefined,
    status: typeof status === 'number' ? status : undefined,
    message:
      typeof candidate.message === 'string' && candidate.message !== '' ? candidate.message : String(error),
  };
}

export interface RetryPolicy {
  /** Attempts a record may fail with retryable failures, and apart from those, with later failures. */
  readonly maxAttempts: number;
  /** Attempts a record may fail with limited failures. */
  readonly limitedAttempts: number;
  /** Full-jitter backoff: a delay drawn from [1, min(maxDelaySeconds, baseDelaySeconds x 2^(attempt-1))]. */
  readonly baseDelaySeconds: number;
  readonly maxDelaySeconds: number;
  /** The delay for `later` failures (a service quota outside the pipeline's control). */
  readonly laterDelaySeconds: number;
  /** How long records wait, and the model's budget pauses, when Bedrock's daily quota is spent. */
  readonly dailyQuotaWaitSeconds: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 10,
  limitedAttempts: 3,
  baseDelaySeconds: 2,
  maxDelaySeconds: 900,
  laterDelaySeconds: 60,
  dailyQuotaWaitSeconds: 900,
};

export type RetryDecision =
  | { readonly action: 'retry'; readonly delaySeconds: number }
  | { readonly action: 'give-up'; readonly reason: string };

/** How often a record has failed: its attempts in all, and those failed in the class of the failure at hand. */
export interface FailureCount {
  /** The 1-based number of the attempt that just failed: the backoff grows with it. */
  readonly attempt: number;
  /** Failures of this failure's class, this one included: the class's limit counts these. */
  readonly ofClass: number;
}

/** `random` returns [0, 1). */
export function decideRetry(
  failure: Failure,
  count: FailureCount,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random: () => number = Math.random,
): RetryDecision {
  if (failure.retry === 'never') return { action: 'give-up', reason: `${failure.code} is not retryable` };
  const limit = failure.retry === 'limited' ? policy.limitedAttempts : policy.maxAttempts;
  if (count.ofClass >= limit) {
    return {
      action: 'give-up',
      reason: `${failure.code} persisted through ${count.ofClass} attempts`,
    };
  }
  const attempt = count.attempt;
  if (failure.retry === 'later') {
    // A little jitter so that records deferred together do not all return in the same second.
    return {
      action: 'retry',
      delaySeconds: Math.ceil(policy.laterDelaySeconds + random() * policy.baseDelaySeconds),
    };
  }
  const ceiling = Math.min(policy.maxDelaySeconds, policy.baseDelaySeconds * 2 ** (attempt - 1));
  return { action: 'retry', delaySeconds: Math.max(1, Math.ceil(random() * ceiling)) };
}
