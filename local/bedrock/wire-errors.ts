import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type http2 from 'node:http2';
import { type BedrockErrorName, bedrockErrorStatus } from '../../shared/failures.ts';

export type Response = http.ServerResponse | http2.Http2ServerResponse;

/** What Bedrock says for each error when the stand-in has nothing more specific to say. */
const DEFAULT_MESSAGES: Record<BedrockErrorName, string> = {
  ThrottlingException: 'Too many tokens, please wait before trying again.',
  ModelNotReadyException:
    'Model is not ready to serve inference requests. The AWS SDK will automatically retry the operation up to 5 times.',
  ServiceUnavailableException: 'Bedrock is unable to process your request.',
  InternalServerException: 'The server encountered an internal error while processing the request.',
  ModelTimeoutException: 'Model has timed out in processing the request. Try your request again.',
  ModelErrorException:
    'The system encountered an unexpected error during processing. Try your request again.',
  ServiceQuotaExceededException: 'Your request exceeds the service quota for your account.',
  ValidationException: 'The provided request is not valid.',
  AccessDeniedException: "You don't have access to the model with the specified model ID.",
  UnrecognizedClientException: 'The security token included in the request is invalid.',
  ResourceNotFoundException: 'The requested resource could not be found.',
  ConflictException: 'The request conflicts with the current state of the resource.',
};

export function isBedrockErrorName(name: string): name is BedrockErrorName {
  return Object.hasOwn(DEFAULT_MESSAGES, name);
}

/** An error answered the way Bedrock answers it: status, `x-amzn-ErrorType` header, JSON `message`. */
export class WireError extends Error {
  readonly type: BedrockErrorName;
  readonly status: number;

  constructor(type: BedrockErrorName, message: string = DEFAULT_MESSAGES[type]) {
    super(message);
    this.name = 'WireError';
    this.type = type;
    this.status = bedrockErrorStatus(type);
  }
}

export function sendError(response: Response, error: WireError): void {
  sendJson(
    response,
    error.status,
    { message: error.message },
    {
      // The service namespace suffix is what real responses carry; the SDK keeps only the part before ":".
      'x-amzn-errortype': `${error.type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
    },
  );
}

export function sendJson(
  response: Response,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  const payload = JSON.stringify(body);
  (response as http.ServerResponse).writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  response.end(payload);
}
