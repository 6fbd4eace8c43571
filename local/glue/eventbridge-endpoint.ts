import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventBridgeShim } from './eventbridge-shim.ts';

interface PutEventsEntry {
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
  readonly Resources?: string[];
}

/**
 * EventBridge's PutEvents over HTTP, on 127.0.0.1, onto the shim's bus: for functions that run in their own
 * process (a function's built bundle, say) and reach the bus through the AWS SDK, as on AWS. The other
 * actions are refused with UnknownOperationException.
 */
export async function startEventBridgeEndpoint(
  shim: EventBridgeShim,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const reply = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify(body));
      };
      if (request.headers['x-amz-target'] !== 'AWSEvents.PutEvents')
        return reply(400, { __type: 'UnknownOperationException', message: 'Only PutEvents is served here.' });
      const { Entries = [] } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        Entries?: PutEventsEntry[];
      };
      for (const entry of Entries) {
        shim.putEvent({
          source: entry.Source ?? '',
          detailType: entry.DetailType ?? '',
          detail: JSON.parse(entry.Detail ?? '{}'),
          resources: entry.Resources ?? [],
        });
      }
      return reply(200, { FailedEntryCount: 0, Entries: Entries.map(() => ({ EventId: randomUUID() })) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
