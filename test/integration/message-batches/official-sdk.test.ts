import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type MessageBatchesServer,
  startMessageBatchesServer,
} from '../../../local/message-batches/server.ts';
import { messageBatchInputKey } from '../../../shared/contract/storage-layout.ts';
import { signedFetch } from '../../../shared/message-batches/signed-fetch.ts';
import { signRequest } from '../../../shared/message-batches/sigv4.ts';
import { startJob } from '../../../shared/pipeline/enqueue.ts';
import { messageBatchesOf } from '../../support/message-batches.ts';
import { objectCreated, pipelineHarness } from '../../support/pipeline-harness.ts';

/** The pipeline's domain on in-memory ports, its Message Batches API on loopback, and Anthropic's own client. */
async function batchesOnPipeline() {
  const pipeline = pipelineHarness();
  const server = await startMessageBatchesServer((baseUrl) => messageBatchesOf(pipeline, undefined, baseUrl));
  const client = new Anthropic({ baseURL: server.baseUrl, apiKey: 'any key works locally', maxRetries: 0 });
  /** What the bucket's event does on AWS: the batch's input starts its job. */
  const startBatch = async (batchId: string) => {
    await startJob(
      objectCreated(messageBatchInputKey(batchId)),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
  };
  /** The queue and the finalizer run until the job is done. */
  const finish = async () => {
    await pipeline.drain();
    await pipeline.finalizeAll();
  };
  return { pipeline, server, client, startBatch, finish };
}

const request = (customId: string, content: string) => ({
  custom_id: customId,
  params: { model: 'claude-opus-4-6', max_tokens: 64, messages: [{ role: 'user' as const, content }] },
});

let setup: Awaited<ReturnType<typeof batchesOnPipeline>>;
let server: MessageBatchesServer;
beforeEach(async () => {
  setup = await batchesOnPipeline();
  server = setup.server;
});
afterEach(() => server.close());

describe("the Message Batches API with Anthropic's SDK", () => {
  it('creates a batch, shows it in progress, then ended with counts that agree and every custom_id once', async () => {
    // Prepare
    const { client, startBatch, finish } = setup;
    const requests = [
      request('first', 'Hello'),
      { custom_id: 'broken', params: { model: 'claude-opus-4-6', max_tokens: 64, messages: [] } },
      request('third', 'Goodbye'),
    ];

    // Act
    const created = await client.messages.batches.create({ requests });
    await startBatch(created.id);
    const running = await client.messages.batches.retrieve(created.id);
    await finish();
    const ended = await client.messages.batches.retrieve(created.id);
    const results = [];
    for await (const result of await client.messages.batches.results(created.id)) results.push(result);

    // Assess
    expect(created).toMatchObject({
      id: expect.stringMatching(/^msgbatch_[0-9A-Z]{24}$/),
      type: 'message_batch',
      processing_status: 'in_progress',
      request_counts: { processing: 3, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      results_url: null,
    });
    expect(Date.parse(created.expires_at) - Date.parse(created.created_at)).toBe(24 * 3_600_000);
    expect(running.processing_status).toBe('in_progress');
    expect(ended).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: 2, errored: 1, canceled: 0, expired: 0 },
      results_url: `${server.baseUrl}/v1/messages/batches/${created.id}/results`,
    });
    expect(ended.ended_at).not.toBeNull();
    expect(results.map((result) => [result.custom_id, result.result.type]).sort()).toEqual([
      ['broken', 'errored'],
      ['first', 'succeeded'],
      ['third', 'succeeded'],
    ]);
    const broken = results.find((result) => result.custom_id === 'broken')?.result;
    expect(broken).toMatchObject({
      type: 'errored',
      error: { type: 'error', error: { type: 'invalid_request_error' } },
    });
  });

  it('lists batches newest first, a page at a time', async () => {
    // Prepare
    const { client, pipeline } = setup;
    const ids = [];
    for (const name of ['a', 'b', 'c']) {
      ids.push((await client.messages.batches.create({ requests: [request(name, name)] })).id);
      pipeline.clock.now += 1;
    }

    // Act
    const first = await client.messages.batches.list({ limit: 2 });
    const next = await client.messages.batches.list({ limit: 2, after_id: first.data.at(-1)?.id ?? '' });
    const all = [];
    for await (const batch of client.messages.batches.list({ limit: 1 })) all.push(batch.id);

    // Assess
    expect(first.data.map((batch) => batch.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    expect(next.data.map((batch) => batch.id)).toEqual([ids[0]]);
    expect(next.has_more).toBe(false);
    expect(all).toEqual([...ids].reverse());
  });

  it('cancels a running batch: the requests not run end canceled, and the batch ends', async () => {
    // Prepare
    const { client, startBatch, finish } = setup;
    const created = await client.messages.batches.create({
      requests: [request('x', 'one'), request('y', 'two')],
    });
    await startBatch(created.id);

    // Act
    const canceling = await client.messages.batches.cancel(created.id);
    await finish();
    const ended = await client.messages.batches.retrieve(created.id);
    const results = [];
    for await (const result of await client.messages.batches.results(created.id))
      results.push(result.result.type);

    // Assess
    expect(canceling.processing_status).toBe('canceling');
    expect(canceling.cancel_initiated_at).not.toBeNull();
    expect(ended).toMatchObject({
      processing_status: 'ended',
      request_counts: { canceled: 2, processing: 0 },
    });
    expect(results).toEqual(['canceled', 'canceled']);
  });

  it('deletes a batch once it has ended, and not before', async () => {
    // Prepare
    const { client, startBatch, finish, pipeline } = setup;
    const created = await client.messages.batches.create({ requests: [request('d', 'd')] });
    await startBatch(created.id);

    // Act
    const early = await client.messages.batches.delete(created.id).catch((error: unknown) => error);
    await finish();
    const deleted = await client.messages.batches.delete(created.id);
    const afterwards = await client.messages.batches.retrieve(created.id).catch((error: unknown) => error);
    const listed = await client.messages.batches.list();

    // Assess
    expect(early).toBeInstanceOf(Anthropic.BadRequestError);
    expect(deleted).toEqual({ id: created.id, type: 'message_batch_deleted' });
    expect(afterwards).toBeInstanceOf(Anthropic.NotFoundError);
    expect(listed.data).toEqual([]);
    expect([...pipeline.store.objects.keys()].filter((key) => key.includes(created.id))).toEqual([]);
  });

  it('ends the requests not run by its expires_at as expired, counted apart from canceled ones', async () => {
    // Prepare: a batch whose job first runs a day and an hour after it was created.
    const { client, startBatch, finish, pipeline } = setup;
    const created = await client.messages.batches.create({
      requests: [request('late', 'a'), request('later', 'b')],
    });
    pipeline.clock.now = Date.parse(created.expires_at) + 3_600_000;

    // Act
    await startBatch(created.id);
    await finish();
    const ended = await client.messages.batches.retrieve(created.id);
    const results = [];
    for await (const result of await client.messages.batches.results(created.id))
      results.push(result.result.type);

    // Assess
    expect(ended).toMatchObject({
      processing_status: 'ended',
      request_counts: { processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 2 },
    });
    expect(results).toEqual(['expired', 'expired']);
    expect(pipeline.model.calls).toHaveLength(0);
  });

  it("takes the pipeline's options as x-bedrock-batch- headers, and refuses a bad one at create", async () => {
    // Prepare
    const { client, startBatch, pipeline } = setup;
    const requests = [request('a', 'a')];

    // Act
    const created = await client.messages.batches.create(
      { requests },
      { headers: { 'x-bedrock-batch-tier': 'flex', 'x-bedrock-batch-max-cost': '5' } },
    );
    await startBatch(created.id);
    const refused = await client.messages.batches
      .create({ requests }, { headers: { 'x-bedrock-batch-lane': 'cheap' } })
      .catch((error: unknown) => error);

    // Assess
    const [job] = pipeline.ledger.jobs.values();
    expect(job?.settings).toMatchObject({ tier: 'flex', maxCostUsd: 5 });
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(String((refused as Error).message)).toMatch(/option lane must be one of on-demand, batch, auto/);
  });

  it.each([
    ['no requests', { requests: [] }, 400, 'invalid_request_error'],
    [
      'a custom_id used twice',
      { requests: [request('same', 'a'), request('same', 'b')] },
      400,
      'invalid_request_error',
    ],
    [
      'a custom_id Anthropic refuses',
      { requests: [request('has space', 'a')] },
      400,
      'invalid_request_error',
    ],
  ])('refuses a create with %s as Anthropic does', async (_case, body, status, type) => {
    // Act
    const error = await setup.client.messages.batches
      .create(body as Anthropic.Messages.Batches.BatchCreateParams)
      .catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error).toMatchObject({ status, error: { type: 'error', error: { type } } });
  });

  it("refuses a batch over Anthropic's limits: 100,000 requests, 256 MB", async () => {
    // Prepare
    const { client, pipeline } = setup;
    const requests = Array.from({ length: 100_001 }, (_, index) => request(`r${index}`, 'x'));
    const api = messageBatchesOf(pipeline, undefined, server.baseUrl);

    // Act
    const tooMany = await client.messages.batches.create({ requests }).catch((error: unknown) => error);
    const tooLarge = await api
      .create({ requests: [request('a', 'a')] }, 256 * 1024 * 1024 + 1)
      .catch((error: unknown) => error);

    // Assess
    expect(tooMany).toMatchObject({ status: 413, error: { error: { type: 'request_too_large' } } });
    expect(String((tooMany as Error).message)).toMatch(/at most 100000 requests; this one has 100001/);
    expect(tooLarge).toMatchObject({ reason: 'BATCH_TOO_LARGE' });
  });

  it('answers an unknown batch with not_found_error, and results before the end with an error', async () => {
    // Prepare
    const { client } = setup;
    const created = await client.messages.batches.create({ requests: [request('z', 'z')] });

    // Act
    const missing = await client.messages.batches
      .retrieve('msgbatch_0000000000NOSUCHBATCH0')
      .catch((error: unknown) => error);
    const early = await fetch(`${server.baseUrl}/v1/messages/batches/${created.id}/results`);

    // Assess
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect(early.status).toBe(400);
    expect(await early.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });
});

describe('the Message Batches API behind IAM authorization (SigV4), as deployed', () => {
  const keys = {
    AKIDTEAMALICE: 'alice-secret',
    AKIDTEAMBOB: 'bob-secret',
  } as const satisfies Record<string, string>;
  const region = 'us-west-2';
  let signed: MessageBatchesServer;
  let pipeline: ReturnType<typeof pipelineHarness>;
  beforeEach(async () => {
    pipeline = pipelineHarness();
    signed = await startMessageBatchesServer(
      (baseUrl, caller) => messageBatchesOf(pipeline, caller, baseUrl),
      {
        sigv4: { region, secretOf: (accessKeyId) => keys[accessKeyId as keyof typeof keys] },
      },
    );
  });
  afterEach(() => signed.close());

  const clientAs = (accessKeyId: keyof typeof keys | undefined) =>
    new Anthropic({
      baseURL: signed.baseUrl,
      apiKey: 'unused behind IAM',
      maxRetries: 0,
      ...(accessKeyId === undefined
        ? {}
        : {
            fetch: signedFetch({ region, credentials: { accessKeyId, secretAccessKey: keys[accessKeyId] } }),
          }),
    });

  it("takes Anthropic's SDK with the package's signed fetch, and shows each caller only its own batches", async () => {
    // Act
    const created = await clientAs('AKIDTEAMALICE').messages.batches.create({
      requests: [request('a', 'a')],
    });
    const own = await clientAs('AKIDTEAMALICE').messages.batches.retrieve(created.id);
    const others = await clientAs('AKIDTEAMBOB')
      .messages.batches.retrieve(created.id)
      .catch((error: unknown) => error);
    const listed = await clientAs('AKIDTEAMBOB').messages.batches.list();

    // Assess
    expect(own.id).toBe(created.id);
    expect(others).toBeInstanceOf(Anthropic.NotFoundError);
    expect(listed.data).toEqual([]);
  });

  it.each([
    ['no signature', undefined],
    ['a key it does not know', 'AKIDSTRANGER'],
  ])('refuses a request with %s as 403', async (_case, accessKeyId) => {
    // Prepare
    const client =
      accessKeyId === undefined
        ? clientAs(undefined)
        : new Anthropic({
            baseURL: signed.baseUrl,
            apiKey: 'unused',
            maxRetries: 0,
            fetch: signedFetch({ region, credentials: { accessKeyId, secretAccessKey: 'guess' } }),
          });

    // Act
    const error = await client.messages.batches.list().catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(Anthropic.PermissionDeniedError);
  });

  it('refuses a signed request changed on its way (another body than the one signed)', async () => {
    // Prepare
    const url = new URL(`${signed.baseUrl}/v1/messages/batches`);
    const signedBody = JSON.stringify({ requests: [request('a', 'a')] });
    const headers = await signRequest(
      { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: signedBody },
      { accessKeyId: 'AKIDTEAMALICE', secretAccessKey: keys.AKIDTEAMALICE },
      region,
    );
    const send = (body: string) => fetch(url, { method: 'POST', headers, body });

    // Act
    const honest = await send(signedBody);
    const changed = await send(JSON.stringify({ requests: [request('b', 'b')] }));

    // Assess
    expect(honest.status).toBe(200);
    expect(changed.status).toBe(403);
  });
});
