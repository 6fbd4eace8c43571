import { readFile } from 'node:fs/promises';
import { CreateTableCommand, ListTablesCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warmUpDynamoDbLocal } from '../../../local/cloud/dynamodb-warm-up.ts';
import { type LocalCloud, startLocalCloud } from '../../../local/cloud/local-cloud.ts';
import { RequestMeter } from '../../../local/cloud/request-meter.ts';
import { type BusEvent, EventBridgeShim } from '../../../local/glue/eventbridge-shim.ts';
import { parseObjectCreated } from '../../../shared/events/object-created.ts';
import { inputObjectCreatedPattern } from '../../../shared/events/patterns.ts';
import { bedrockClient, invoke, invokeBody } from '../../support/bedrock-clients.ts';
import { readJsonFixture } from '../../support/factories.ts';
import { isAlive } from '../../support/processes.ts';

let cloud: LocalCloud;
beforeAll(async () => {
  cloud = await startLocalCloud({ bedrock: { speed: 0 } });
}, 90_000);
afterAll(() => cloud.stop());

describe('startLocalCloud', () => {
  it('serves every service on 127.0.0.1 only', async () => {
    // Assess: the endpoints are loopback, and the kernel shows each port listening on loopback alone.
    for (const endpoint of Object.values(cloud.endpoints)) {
      expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await listeningAddresses(Number(new URL(endpoint).port))).toEqual(['127.0.0.1']);
    }
  });

  it('runs DynamoDB Local with transactions, through the real SDK', async () => {
    // Prepare
    const { dynamodb, documents } = cloud.clients;
    await dynamodb.send(
      new CreateTableCommand({
        TableName: 'ledger-check',
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      }),
    );

    // A record marked done and its job's counter raised in one step, unless the record was done already.
    const markDone = () =>
      dynamodb.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Put: {
                TableName: 'ledger-check',
                Item: { pk: { S: 'record#1' } },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Update: {
                TableName: 'ledger-check',
                Key: { pk: { S: 'job' } },
                UpdateExpression: 'ADD done :one',
                ExpressionAttributeValues: { ':one': { N: '1' } },
              },
            },
          ],
        }),
      );

    // Act
    await markDone();
    const again = markDone();

    // Assess
    await expect(again).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    const job = await documents.send(new GetCommand({ TableName: 'ledger-check', Key: { pk: 'job' } }));
    expect(job.Item).toEqual({ pk: 'job', done: 1 });
  });

  it('warms DynamoDB Local with each kind of request the ledger makes, on a table it drops after', async () => {
    // Prepare
    const meter = new RequestMeter();
    const tablesBefore = (await cloud.clients.dynamodb.send(new ListTablesCommand({}))).TableNames;
    meter.attach(cloud.clients);

    // Act
    await warmUpDynamoDbLocal(cloud.clients);

    // Assess
    for (const operation of [
      'PutItem',
      'UpdateItem',
      'GetItem',
      'BatchGetItem',
      'TransactWriteItems',
      'Query',
    ])
      expect(meter.count('dynamodb', operation)).toBeGreaterThan(0);
    expect((await cloud.clients.dynamodb.send(new ListTablesCommand({}))).TableNames).toEqual(tablesBefore);
  });

  it('serves Bedrock through the stand-in', async () => {
    const response = await invoke(cloud.clients.bedrock, invokeBody());
    expect(response.type).toBe('message');
  });

  it('stops a warmed local cloud, DynamoDB Local by its process id', async () => {
    // Prepare
    const other = await startLocalCloud({ warmDynamoDb: true });
    const aliveBefore = isAlive(other.dynamodbPid);

    // Act
    await other.stop();

    // Assess
    expect(aliveBefore).toBe(true);
    expect(isAlive(other.dynamodbPid)).toBe(false);
    await expect(invoke(bedrockClient(other.bedrock), invokeBody())).rejects.toThrow();
  }, 90_000);
});

describe('EventBridge shim', () => {
  const bucket = 'shim-bucket';
  let shim: EventBridgeShim;
  let received: BusEvent[];

  beforeAll(async () => {
    await cloud.clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await cloud.clients.s3.send(new CreateBucketCommand({ Bucket: 'quiet-bucket' }));
    shim = new EventBridgeShim({
      region: cloud.region,
      s3: cloud.clients.s3,
      objectCreated: cloud.objectCreated,
    });
    shim.enableBucket(bucket);
    received = [];
    shim.addRule({
      name: 'start-job',
      eventPattern: inputObjectCreatedPattern(bucket),
      target: async (event) => {
        received.push(event);
      },
    });
  });
  afterAll(() => shim.close());

  const put = async (key: string, body = '{"prompt": "hi"}\n', target = bucket) => {
    await cloud.clients.s3.send(new PutObjectCommand({ Bucket: target, Key: key, Body: body }));
    await shim.idle();
  };

  it('emits an S3 "Object Created" event of the real shape for an upload under inputs/', async () => {
    // Prepare
    received.length = 0;

    // Act
    await put('inputs/plain.jsonl');

    // Assess
    const fixture = readJsonFixture<BusEvent & { detail: Record<string, unknown> }>('s3-object-created.json');
    expect(received).toHaveLength(1);
    const [event] = received;
    expect(Object.keys(event ?? {}).sort()).toEqual(Object.keys(fixture).sort());
    expect(Object.keys((event?.detail ?? {}) as object).sort()).toEqual(Object.keys(fixture.detail).sort());
    expect(event).toMatchObject({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      region: cloud.region,
      resources: [`arn:aws:s3:::${bucket}`],
      detail: {
        bucket: { name: bucket },
        object: { key: 'inputs/plain.jsonl', size: 17 },
        reason: 'PutObject',
      },
    });
    const head = await cloud.clients.s3.send(
      new HeadObjectCommand({ Bucket: bucket, Key: 'inputs/plain.jsonl' }),
    );
    const detail = event?.detail as { object?: { etag?: string } } | undefined;
    expect(detail?.object?.etag).toBe(head.ETag?.replaceAll('"', ''));
  });

  it.each([
    ['spaces', 'inputs/team reports/Q3 notes.jsonl', 'inputs/team+reports/Q3+notes.jsonl'],
    ['a plus sign', 'inputs/c++ tips.jsonl', 'inputs/c%2B%2B+tips.jsonl'],
    ['a colon', 'inputs/2026-11-25T10:00.jsonl', 'inputs/2026-11-25T10%3A00.jsonl'],
    ['non-ASCII', 'inputs/résumé 日本.jsonl', 'inputs/r%C3%A9sum%C3%A9+%E6%97%A5%E6%9C%AC.jsonl'],
  ])(
    'encodes a key with %s as S3 does, and the domain decodes it back to the object',
    async (_case, key, eventKey) => {
      // Prepare
      received.length = 0;

      // Act
      await put(key);

      // Assess
      const event = parseObjectCreated(received[0]);
      expect(event.eventKey).toBe(eventKey);
      expect(event.keyCandidates[0]).toBe(key);
      const object = await cloud.clients.s3.send(
        new GetObjectCommand({ Bucket: bucket, Key: event.keyCandidates[0] }),
      );
      expect(await object.Body?.transformToString()).toBe('{"prompt": "hi"}\n');
    },
  );

  it.each([
    ['an output object', 'outputs/plain.jsonl.out', bucket],
    ['a file outside inputs/', 'archive/plain.jsonl', bucket],
    ['a bucket without EventBridge delivery', 'inputs/plain.jsonl', 'quiet-bucket'],
  ])('delivers nothing for %s', async (_case, key, target) => {
    // Prepare
    received.length = 0;

    // Act
    await put(key, 'x', target);

    // Assess
    expect(received).toEqual([]);
  });

  it('reports a multipart upload once, when it completes', async () => {
    // Prepare
    received.length = 0;
    const { s3 } = cloud.clients;
    const key = 'inputs/multipart.jsonl';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'a'.repeat(100) }),
    );
    await shim.idle();
    const beforeCompletion = received.length;

    // Act
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    await shim.idle();

    // Assess
    expect(beforeCompletion).toBe(0);
    expect(received.map((event) => (event.detail as { reason: string }).reason)).toEqual([
      'CompleteMultipartUpload',
    ]);
  });

  it('retries a failing target twice, then keeps the event as a failed delivery', async () => {
    // Prepare
    let attempts = 0;
    const failing = new EventBridgeShim({
      region: cloud.region,
      s3: cloud.clients.s3,
      objectCreated: cloud.objectCreated,
    });
    failing.addRule({
      name: 'always-fails',
      eventPattern: { source: ['bedrock-batch'] },
      target: async () => {
        attempts += 1;
        throw new Error('target down');
      },
    });

    // Act
    failing.putEvent({ source: 'bedrock-batch', detailType: 'Batch Job Completed', detail: { jobId: 'j' } });
    await failing.idle();
    failing.close();

    // Assess
    expect(attempts).toBe(3);
    expect(failing.failedDeliveries).toEqual([
      expect.objectContaining({
        rule: 'always-fails',
        error: expect.objectContaining({ message: 'target down' }),
      }),
    ]);
    expect(failing.events[0]).toMatchObject({
      source: 'bedrock-batch',
      'detail-type': 'Batch Job Completed',
      detail: { jobId: 'j' },
    });
  });
});

/** The local addresses the kernel shows listening on `port` (Linux /proc/net/tcp and tcp6). */
async function listeningAddresses(port: number): Promise<string[]> {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const addresses = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = (await readFile(table, 'utf8')).split('\n').slice(1);
    for (const line of lines) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || local === undefined || !local.endsWith(`:${portHex}`)) continue;
      const hex = local.slice(0, local.indexOf(':'));
      // IPv4 (or IPv4-mapped IPv6) addresses are the last four bytes, little-endian per 32-bit word.
      const word = hex.slice(-8);
      const bytes = [6, 4, 2, 0].map((offset) => Number.parseInt(word.slice(offset, offset + 2), 16));
      const mapped = hex.length === 8 || hex.startsWith('0000000000000000FFFF0000');
      addresses.add(mapped ? bytes.join('.') : hex);
    }
  }
  return [...addresses];
}
