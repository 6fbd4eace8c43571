import type { APIGatewayProxyEventV2WithIAMAuthorizer, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMessageBatchesHandler } from '../../functions/message-batches/handler.ts';
import { observability } from '../../functions/observability.ts';
import { createLambdaContext } from '../../local/glue/lambda-context.ts';
import { messageBatchInputKey } from '../../shared/contract/storage-layout.ts';
import { startJob } from '../../shared/pipeline/enqueue.ts';
import { messageBatchesOf } from '../support/message-batches.ts';
import { objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

/** An HTTP API (payload 2.0) request, signed by `userArn`. */
function apiEvent(
  method: string,
  rawPath: string,
  userArn: string,
  body?: unknown,
): APIGatewayProxyEventV2WithIAMAuthorizer {
  return {
    version: '2.0',
    routeKey: `ANY ${rawPath}`,
    rawPath,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    isBase64Encoded: body !== undefined,
    ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)).toString('base64') }),
    requestContext: {
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '10.0.0.1', userAgent: 'test' },
      authorizer: { iam: { userArn } },
    },
  } as unknown as APIGatewayProxyEventV2WithIAMAuthorizer;
}

const context = () => createLambdaContext({ functionName: 'message-batches', timeoutMs: 29_000 }) as Context;
const ALICE = 'arn:aws:iam::123456789012:user/alice';

beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

describe('the Message Batches API function behind API Gateway', () => {
  it("serves the caller's batches and sends results to their presigned address", async () => {
    // Prepare
    const pipeline = pipelineHarness();
    const presigned: string[] = [];
    const handler = createMessageBatchesHandler({
      ...observability('messageBatches'),
      apiFor: (caller) => messageBatchesOf(pipeline, caller),
      presign: async (location) => {
        presigned.push(location.key);
        return `https://bucket.s3.amazonaws.com/${location.key}?X-Amz-Signature=x`;
      },
    });
    const params = { model: 'claude-opus-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] };

    // Act
    const created = await handler(
      apiEvent('POST', '/v1/messages/batches', ALICE, { requests: [{ custom_id: 'a', params }] }),
      context(),
    );
    const { id } = JSON.parse(String(created.body)) as { id: string };
    await startJob(
      objectCreated(messageBatchInputKey(id)),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    await pipeline.drain();
    await pipeline.finalizeAll();
    const results = await handler(apiEvent('GET', `/v1/messages/batches/${id}/results`, ALICE), context());
    const bobs = await handler(
      apiEvent('GET', `/v1/messages/batches/${id}`, 'arn:aws:iam::123456789012:user/bob'),
      context(),
    );

    // Assess
    expect(created.statusCode).toBe(200);
    expect(results).toMatchObject({
      statusCode: 303,
      headers: { location: expect.stringContaining('X-Amz-Signature') },
    });
    expect(presigned).toEqual([
      expect.stringMatching(new RegExp(`^outputs/message-batches/${id}\\.jsonl/job-`)),
    ]);
    expect(bobs.statusCode).toBe(404);
  });
});
