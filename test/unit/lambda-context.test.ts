import { describe, expect, it } from 'vitest';
import { createLambdaContext, invokeWithTimeout } from '../../local/glue/lambda-context.ts';

describe('createLambdaContext', () => {
  it('counts the remaining time down from the timeout, never below zero', () => {
    // Prepare
    let clock = 1_000;
    const context = createLambdaContext({ functionName: 'worker', timeoutMs: 900, now: () => clock });

    // Act
    const atStart = context.getRemainingTimeInMillis();
    clock += 600;
    const later = context.getRemainingTimeInMillis();
    clock += 1_000;
    const past = context.getRemainingTimeInMillis();

    // Assess
    expect([atStart, later, past]).toEqual([900, 300, 0]);
    expect(context.invokedFunctionArn).toBe('arn:aws:lambda:us-west-2:000000000000:function:worker');
  });
});

describe('invokeWithTimeout', () => {
  it('returns what the handler returns within the timeout', async () => {
    await expect(invokeWithTimeout('fn', 1_000, async (context) => context.functionName)).resolves.toBe('fn');
  });

  it('fails an invocation that runs past its timeout', async () => {
    await expect(invokeWithTimeout('slow', 20, () => new Promise(() => {}))).rejects.toThrow(
      /slow timed out after 20 ms/,
    );
  });
});
