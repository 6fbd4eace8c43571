import { describe, expect, it } from 'vitest';
import { PipelineError, RecordRejectedError } from '../../shared/errors.ts';
import { classifyFailure, DEFAULT_RETRY_POLICY, decideRetry, type Failure } from '../../shared/failures.ts';
import { awsError } from '../support/factories.ts';

const bedrockError = (name: string, status: number | undefined, message = 'from Bedrock') =>
  awsError(name, status, message);

function nodeError(code: string): Error {
  return Object.assign(new Error(`socket: ${code}`), { code });
}

describe('classifyFailure', () => {
  describe.each([
    // Bedrock's InvokeModel errors, one by one
    ['ThrottlingException', 429, 'retryable', 'rate_limit_error', true],
    ['ModelNotReadyException', 429, 'retryable', 'overloaded_error', false],
    ['ServiceUnavailableException', 503, 'retryable', 'overloaded_error', false],
    ['InternalServerException', 500, 'retryable', 'api_error', false],
    ['ModelTimeoutException', 408, 'limited', 'timeout_error', false],
    ['ModelErrorException', 424, 'limited', 'api_error', false],
    ['ServiceQuotaExceededException', 400, 'later', 'rate_limit_error', false],
    ['ValidationException', 400, 'never', 'invalid_request_error', false],
    ['AccessDeniedException', 403, 'never', 'permission_error', false],
    ['ResourceNotFoundException', 404, 'never', 'not_found_error', false],
    ['UnrecognizedClientException', 403, 'never', 'authentication_error', false],
  ] as const)('Bedrock %s (%i)', (name, status, retry, anthropicType, throttle) => {
    it(`is ${retry}`, () => {
      // Act
      const failure = classifyFailure(bedrockError(name, status));

      // Assess
      expect(failure).toMatchObject({ code: name, httpStatus: status, retry, anthropicType, throttle });
    });
  });

  describe.each([
    [
      'an SDK request timeout',
      Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      'TimeoutError',
      'retryable',
    ],
    ['our deadline abort', new DOMException('aborted', 'AbortError'), 'AbortError', 'retryable'],
    ['a reset socket', nodeError('ECONNRESET'), 'ECONNRESET', 'retryable'],
    ['a refused connection', nodeError('ECONNREFUSED'), 'ECONNREFUSED', 'retryable'],
    ['an HTTP/2 stream error', nodeError('ERR_HTTP2_STREAM_ERROR'), 'ERR_HTTP2_STREAM_ERROR', 'retryable'],
    ['an unknown 5xx', bedrockError('SomethingNewException', 502), 'SomethingNewException', 'retryable'],
    ['an unknown 429', bedrockError('TooManyThingsException', 429), 'TooManyThingsException', 'retryable'],
    ['an unknown 4xx', bedrockError('SomethingWrongException', 409), 'SomethingWrongException', 'never'],
    ['a bug without a status', new TypeError('x is undefined'), 'TypeError', 'limited'],
    ['a thrown string', 'boom', 'UnknownError', 'limited'],
    [
      'a record we rejected',
      new RecordRejectedError('CONTEXT_TOO_LONG', 'too long'),
      'CONTEXT_TOO_LONG',
      'never',
    ],
    ['an input line error', new PipelineError('INVALID_JSON', 'bad line'), 'INVALID_JSON', 'never'],
  ] as const)('%s', (_case, error, code, retry) => {
    it(`is ${code}, ${retry}`, () => {
      // Act
      const failure = classifyFailure(error);

      // Assess
      expect(failure.code).toBe(code);
      expect(failure.retry).toBe(retry);
    });
  });

  it('adds the fix to a Bedrock message that lacks it', () => {
    // Act
    const failure = classifyFailure(
      bedrockError(
        'UnrecognizedClientException',
        403,
        'The security token included in the request is invalid.',
      ),
    );

    // Assess
    expect(failure.message).toBe(
      'The security token included in the request is invalid. Bedrock authenticates with AWS IAM credentials (SigV4), not an Anthropic API key (x-api-key): configure the AWS credential chain.',
    );
  });

  it('reports an oversized line or body as request_too_large (413)', () => {
    // Act
    const failure = classifyFailure(new PipelineError('LINE_TOO_LARGE', 'big'));

    // Assess
    expect(failure).toMatchObject({ httpStatus: 413, anthropicType: 'request_too_large', retry: 'never' });
  });

  it('tells the daily quota apart from the per-minute one by its message', () => {
    // Act
    const daily = classifyFailure(
      bedrockError('ThrottlingException', 429, 'Too many tokens per day, please wait before trying again.'),
    );
    const perMinute = classifyFailure(
      bedrockError('ThrottlingException', 429, 'Too many tokens, please wait before trying again.'),
    );

    // Assess
    expect(daily).toMatchObject({
      code: 'ThrottlingException',
      retry: 'later',
      dailyQuota: true,
      throttle: false,
    });
    expect(daily.message).toContain('Service Quotas');
    expect(perMinute).toMatchObject({ retry: 'retryable', dailyQuota: false, throttle: true });
  });

  it.each([
    ['an error Bedrock answered', bedrockError('ModelErrorException', 424), true],
    ['a call that got no answer', nodeError('ECONNRESET'), false],
    ['our own error', new PipelineError('INVALID_JSON', 'bad line'), false],
  ])('knows whether Bedrock answered: %s', (_case, error, answered) => {
    // Act
    const failure = classifyFailure(error);

    // Assess
    expect(failure.answered).toBe(answered);
  });
});

describe('decideRetry', () => {
  const failure = (retry: Failure['retry']): Failure => ({
    code: 'X',
    message: 'x',
    httpStatus: 500,
    retry,
    anthropicType: 'api_error',
    throttle: false,
    dailyQuota: false,
    tierRefused: false,
    answered: true,
  });
  const policy = {
    ...DEFAULT_RETRY_POLICY,
    maxAttempts: 5,
    limitedAttempts: 3,
    baseDelaySeconds: 2,
    maxDelaySeconds: 20,
  };

  describe.each([
    // retry class, attempt that failed, failures of that class so far (this one included), draw, expected
    ['never', 1, 1, 0.5, { action: 'give-up', reason: 'X is not retryable' }],
    ['retryable', 1, 1, 0.99, { action: 'retry', delaySeconds: 2 }],
    ['retryable', 2, 2, 0.99, { action: 'retry', delaySeconds: 4 }],
    ['retryable', 3, 3, 0.5, { action: 'retry', delaySeconds: 4 }],
    ['retryable', 4, 4, 0.99, { action: 'retry', delaySeconds: 16 }],
    ['retryable', 4, 4, 0, { action: 'retry', delaySeconds: 1 }],
    ['retryable', 5, 5, 0.5, { action: 'give-up', reason: 'X persisted through 5 attempts' }],
    ['limited', 2, 2, 0.99, { action: 'retry', delaySeconds: 4 }],
    ['limited', 3, 3, 0.5, { action: 'give-up', reason: 'X persisted through 3 attempts' }],
    // Two throttles, then a first timeout: the timeout's limit counts timeouts only.
    ['limited', 3, 1, 0.99, { action: 'retry', delaySeconds: 8 }],
    ['retryable', 7, 4, 0.99, { action: 'retry', delaySeconds: 20 }],
    ['later', 1, 1, 0, { action: 'retry', delaySeconds: 60 }],
    ['later', 1, 1, 0.75, { action: 'retry', delaySeconds: 62 }],
    ['later', 5, 5, 0, { action: 'give-up', reason: 'X persisted through 5 attempts' }],
  ] as const)(
    "a %s failure on attempt %i, its class's failure %i (draw %f)",
    (retry, attempt, ofClass, draw, expected) => {
      it(`gives ${expected.action}`, () => {
        // Act
        const decision = decideRetry(failure(retry), { attempt, ofClass }, policy, () => draw);

        // Assess
        expect(decision).toEqual(expected);
      });
    },
  );

  it('caps the backoff ceiling at maxDelaySeconds (full jitter never waits longer)', () => {
    // Act
    const delays = [6, 7, 8, 9].map((attempt) =>
      decideRetry(
        failure('retryable'),
        { attempt, ofClass: attempt },
        { ...policy, maxAttempts: 99 },
        () => 0.999999,
      ),
    );

    // Assess
    expect(delays).toEqual(Array(4).fill({ action: 'retry', delaySeconds: 20 }));
  });

  it('spreads delays over the whole jitter range', () => {
    // Prepare
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };

    // Act
    const delays = Array.from({ length: 400 }, () => {
      const decision = decideRetry(failure('retryable'), { attempt: 4, ofClass: 4 }, policy, random);
      return decision.action === 'retry' ? decision.delaySeconds : -1;
    });

    // Assess
    expect(Math.min(...delays)).toBe(1);
    expect(Math.max(...delays)).toBe(16);
    expect(new Set(delays).size).toBe(16);
  });
});
