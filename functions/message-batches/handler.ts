import { MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2WithIAMAuthorizer, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { METRICS } from '../../shared/contract/metrics.ts';
import type { ObjectLocation } from '../../shared/core/model.ts';
import type { MessageBatches } from '../../shared/message-batches/message-batches.ts';
import { answerApiRequest, anthropicError } from '../../shared/message-batches/routes.ts';
import { type Observability, withObservability } from '../observability.ts';

export interface MessageBatchesDependencies extends Observability {
  /** The API as a caller (an IAM principal) sees it. */
  readonly apiFor: (caller: string | undefined) => MessageBatches;
  /** A presigned address of the object, for a while: results are fetched from S3, not through the function. */
  readonly presign: (location: ObjectLocation) => Promise<string>;
}

/**
 * The Message Batches API behind API Gateway's IAM authorization (HTTP API, payload 2.0): the caller is the
 * IAM principal that signed the request. Results are a redirect to their presigned S3 address, since a
 * batch's results may be far larger than a function's response.
 */
export function createMessageBatchesHandler(dependencies: MessageBatchesDependencies) {
  const { logger, metrics } = dependencies;

  const handle = async (
    event: APIGatewayProxyEventV2WithIAMAuthorizer,
  ): Promise<APIGatewayProxyStructuredResultV2> => {
    metrics.addMetric(METRICS.messageBatches.apiRequests, MetricUnit.Count, 1);
    const body =
      event.body === undefined
        ? new Uint8Array()
        : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
    try {
      const answered = await answerApiRequest(dependencies.apiFor, {
        method: event.requestContext.http.method,
        path: event.rawPath,
        query: new URLSearchParams(event.rawQueryString),
        headers: event.headers,
        body,
        caller: event.requestContext.authorizer.iam.userArn,
      });
      if ('json' in answered) return json(answered.status, answered.json);
      return {
        statusCode: 303,
        headers: { location: await dependencies.presign(answered.results.location) },
      };
    } catch (error) {
      // Requests hold prompts: the error is logged, never the request.
      logger.error('message batches request failed', { path: event.rawPath, error });
      metrics.addMetric(METRICS.messageBatches.apiFailures, MetricUnit.Count, 1);
      return json(500, anthropicError('api_error', 'The request could not be served.'));
    }
  };

  return withObservability(middy(handle), dependencies);
}

function json(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
