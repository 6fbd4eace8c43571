import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MessageBatches } from '../../shared/message-batches/message-batches.ts';
import { answerApiRequest, anthropicError } from '../../shared/message-batches/routes.ts';
import { verifySignature } from '../../shared/message-batches/sigv4.ts';

/**
 * The Message Batches API on loopback, as `local up` serves it: any API key is accepted. With `sigv4`, it
 * authorizes as the deployed API does (IAM: a SigV4 signature for execute-api, refused with 403 otherwise),
 * each caller seeing its own batches.
 */
export interface ServerOptions {
  readonly port?: number;
  readonly sigv4?: {
    readonly region: string;
    readonly secretOf: (accessKeyId: string) => string | undefined;
  };
}

export interface MessageBatchesServer {
  /** The base URL to give Anthropic's SDK (`new Anthropic({ baseURL, apiKey })`). */
  readonly baseUrl: string;
  close(): Promise<void>;
}

/**
 * Serves `api` on 127.0.0.1. `api` is made with the base URL this returns (its results' address), so it is
 * given as a function of it.
 */
export async function startMessageBatchesServer(
  apiAt: (baseUrl: string, caller: string | undefined) => MessageBatches,
  options: ServerOptions = {},
): Promise<MessageBatchesServer> {
  let api: ((caller: string | undefined) => MessageBatches) | undefined;
  const server = http.createServer((request, response) => {
    void answer(request, response, api, options).catch((error: unknown) => {
      if (!response.headersSent) writeJson(response, 500, internalError(error));
      else response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api = (caller) => apiAt(baseUrl, caller);
  return {
    baseUrl,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function answer(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  api: ((caller: string | undefined) => MessageBatches) | undefined,
  options: ServerOptions,
): Promise<void> {
  if (api === undefined) throw new Error('the Message Batches API is not ready');
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const url = new URL(request.url ?? '/', `http://${request.headers.host ?? 'loopback'}`);
  const caller = options.sigv4 === undefined ? undefined : await callerOf(request, url, body, options.sigv4);
  if (options.sigv4 !== undefined && caller === undefined) {
    writeJson(response, 403, { message: 'Forbidden' });
    return;
  }
  const answered = await answerApiRequest(api, {
    method: request.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: request.headers,
    body,
    caller,
  });
  if ('json' in answered) {
    writeJson(response, answered.status, answered.json);
    return;
  }
  response.writeHead(200, { 'content-type': 'application/binary' });
  for await (const chunk of answered.results.lines) response.write(chunk);
  response.end();
}

/** The access key that signed the request, when its signature holds. */
function callerOf(
  request: http.IncomingMessage,
  url: URL,
  body: Buffer,
  sigv4: NonNullable<ServerOptions['sigv4']>,
): Promise<string | undefined> {
  const headers = Object.fromEntries(
    Object.entries(request.headers).flatMap(([name, value]) =>
      typeof value === 'string' ? [[name, value]] : [],
    ),
  );
  return verifySignature(
    { method: request.method ?? 'GET', url, headers, body: body.byteLength === 0 ? undefined : body },
    sigv4.secretOf,
    sigv4.region,
  );
}

function writeJson(response: http.ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'request-id': `req_local_${Date.now().toString(36)}`,
  });
  response.end(payload);
}

function internalError(error: unknown) {
  return anthropicError('api_error', error instanceof Error ? error.message : String(error));
}
