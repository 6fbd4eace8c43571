import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';

export interface LambdaContextOptions {
  readonly functionName: string;
  readonly timeoutMs: number;
  readonly region?: string;
  readonly memoryLimitInMB?: number;
  readonly now?: () => number;
  /** True once the local pipeline is stopping: the invocation has no time left, so it stops at its next step. */
  readonly ending?: () => boolean;
}

/**
 * A Lambda invocation context whose `getRemainingTimeInMillis()` counts down from the configured timeout, so
 * handlers that stop or checkpoint before their deadline behave locally as they do on Lambda.
 */
export function createLambdaContext(options: LambdaContextOptions): Context {
  const now = options.now ?? Date.now;
  const deadline = now() + options.timeoutMs;
  const region = options.region ?? 'us-west-2';
  const notSupported = () => {
    throw new Error('The callback-style context methods are not supported: return a promise.');
  };
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: options.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryLimitInMB ?? 1024),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: `local/${randomUUID()}`,
    getRemainingTimeInMillis: () => (options.ending?.() === true ? 0 : Math.max(0, deadline - now())),
    done: notSupported,
    fail: notSupported,
    succeed: notSupported,
  };
}

/**
 * Runs a handler as Lambda would within `timeoutMs`: past the deadline the invocation counts as failed (Lambda
 * would end it; here its promise is left to settle on its own).
 */
export async function invokeWithTimeout<Result>(
  functionName: string,
  timeoutMs: number,
  run: (context: Context) => Promise<Result>,
  ending?: () => boolean,
): Promise<Result> {
  const context = createLambdaContext({
    functionName,
    timeoutMs,
    ...(ending === undefined ? {} : { ending }),
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${functionName} timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([run(context), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
