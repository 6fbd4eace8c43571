import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MessageBatches } from '../../shared/message-batches/message-batches.ts';
import { answerApiRequest } from '../../shared/message-batches/routes.ts';

/** The Message Batches API on loopback, as `local up` serves it: any API key is accepted. */
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
  apiAt: (baseUrl: string) => MessageBatches,
  port = 0,
): Promise<MessageBatchesServer> {
  let api: MessageBatches | undefined;
  const server = http.createServer((request, response) => {
    void answer(request, response, api).catch((error: unknown) => {
      if (!response.headersSent) writeJson(response, 500, internalError(error));
      else response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api = apiAt(baseUrl);
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
  api: MessageBatches | undefined,
): Promise<void> {
  if (api === undefined) throw new Error('the Message Batches API is not ready');
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const url = new URL(request.url ?? '/', 'http://loopback');
  const answered = await answerApiRequest(api, {
    method: request.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    headers: request.headers,
    body: Buffer.concat(chunks),
  });
  if ('json' in answered) {
    writeJson(response, answered.status, answered.json);
    return;
  }
  response.writeHead(200, { 'content-type': 'application/binary' });
  for await (const chunk of answered.jsonl) response.write(chunk);
  response.end();
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
  const message = error instanceof Error ? error.message : String(error);
  return { type: 'error', error: { type: 'api_error', message } };
}
