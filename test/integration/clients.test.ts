import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients, FUNCTION_SOCKETS } from '../../functions/adapters/clients.ts';
import { LOCAL_CREDENTIALS } from '../../local/cloud/local-cloud.ts';

/** An endpoint that holds every request until told to answer, counting how many it holds at once. */
function holdingEndpoint() {
  const held: http.ServerResponse[] = [];
  let answering = false;
  let peak = 0;
  const answer = (response: http.ServerResponse) =>
    response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  const server = http.createServer((request, response) => {
    request.resume();
    if (answering) return answer(response);
    held.push(response);
    peak = Math.max(peak, held.length);
  });
  return {
    server,
    held: () => held.length,
    peak: () => peak,
    answerAll: () => {
      answering = true;
      for (const response of held.splice(0)) answer(response);
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe("the functions' AWS clients", () => {
  const endpoint = holdingEndpoint();
  let url: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => endpoint.server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(endpoint.server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => endpoint.server.close(() => resolve())));

  it("send a whole worker batch's ledger requests at once, not the SDK's 50 and a queue", async () => {
    // Prepare
    const { dynamodb } = awsClients({
      region: 'us-west-2',
      endpoints: { s3: url, sqs: url, dynamodb: url, bedrock: url },
      credentials: LOCAL_CREDENTIALS,
    });
    const call = () =>
      dynamodb.send(
        new GetItemCommand({ TableName: 'ledger', Key: { pk: { S: 'JOB#a' }, sk: { S: 'JOB' } } }),
      );

    // Act: more calls than the pool holds; the endpoint answers none until the pool's worth arrived.
    const calls = Array.from({ length: FUNCTION_SOCKETS + 20 }, call);
    await until(() => endpoint.held() >= FUNCTION_SOCKETS);
    endpoint.answerAll();
    const settled = await Promise.allSettled(calls);
    dynamodb.destroy();

    // Assess: the pool's worth at once, and the rest once sockets were free.
    expect(endpoint.peak()).toBe(FUNCTION_SOCKETS);
    expect(settled.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(FUNCTION_SOCKETS + 20);
  });
});
