import { describe, expect, it, vi } from 'vitest';
import { FULL_BUCKET_LEAD_MS, levelAt, MINUTE_MS } from '../../shared/budget/bucket.ts';
import { continueJob, startJob } from '../../shared/pipeline/enqueue.ts';
import { finalizeJob } from '../../shared/pipeline/finalize.ts';
import { estimateInputTokens } from '../../shared/request/token-estimate.ts';
import { awsError, MIXED_SAMPLE_RESULT_IDS, readFixture } from '../support/factories.ts';
import { failNext } from '../support/faults.ts';
import { MemoryBudget, textResponse } from '../support/memory-ports.ts';
import {
  BUCKET,
  type HarnessOptions,
  jobDefaults,
  objectCreated,
  pipelineHarness,
} from '../support/pipeline-harness.ts';

const plain = (id: string, prompt = `Prompt ${id}`) => JSON.stringify({ id, prompt });

/** The record message an upload of `body` to `key` queues: the file read, the record waiting for a worker. */
async function queuedRecord(pipeline: ReturnType<typeof pipelineHarness>, key: string, body: string) {
  pipeline.store.putObject(BUCKET, key, body);
  await startJob(objectCreated(key), pipeline.ports, pipeline.enqueueSettings, () => false);
  const [message] = pipeline.queue.sent.splice(0);
  if (message === undefined) throw new Error('no message');
  return message;
}

describe('a job, end to end on in-memory ports', () => {
  it('turns the mixed sample file into one result per line, in input order and each in its family', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    const { outcome } = await pipeline.run(
      'inputs/mixed.jsonl',
      readFixture('prompts/mixed.jsonl').toString('utf8'),
    );

    // Assess
    expect(outcome).toMatchObject({ kind: 'read', totalRecords: 11 });
    const lines = pipeline.outputLines('inputs/mixed.jsonl');
    expect(lines.map((line) => line.recordId ?? line.custom_id ?? line.id)).toEqual(MIXED_SAMPLE_RESULT_IDS);
    expect(lines[0]).toMatchObject({ recordId: 'summary-001', modelOutput: { content: [{ type: 'text' }] } });
    expect(lines[1]).toMatchObject({ custom_id: 'ticket-42', result: { type: 'succeeded' } });
    expect(lines[2]).toMatchObject({
      id: 'haiku-about-s3',
      status: 'succeeded',
      text: expect.stringMatching(/^echo/),
    });
    expect(lines[4]).toMatchObject({ id: 'line-6', status: 'errored', error: { code: 'INVALID_JSON' } });
    expect(lines[7]).toMatchObject({ id: 'summary-001', line: 9, error: { code: 'DUPLICATE_RECORD_ID' } });
    expect(lines[9]).toMatchObject({
      custom_id: 'legacy-model',
      result: { type: 'errored', error: { error: { type: 'invalid_request_error' } } },
    });
    expect(pipeline.manifest('inputs/mixed.jsonl')).toMatchObject({
      totalRecordCount: 11,
      processedRecordCount: 11,
      successRecordCount: 6,
      errorRecordCount: 5,
      inputTokenCount: 60,
      outputTokenCount: 30,
      model: 'opus-4.6',
      endpoint: 'global',
    });
    expect(pipeline.events.outcomes.map((event) => event.detailType)).toEqual(['Batch Job Completed']);
  });

  it('calls Bedrock with the domain body: Bedrock version, resolved model, 1M beta for a long document', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    await pipeline.run('inputs/long.jsonl', readFixture('prompts/long-document.jsonl').toString('utf8'));

    // Assess
    expect(pipeline.model.calls).toHaveLength(1);
    expect(pipeline.model.calls[0]?.modelId).toBe('global.anthropic.claude-opus-4-6-v1');
    expect(pipeline.model.calls[0]?.body).toMatchObject({
      anthropic_version: 'bedrock-2023-05-31',
      anthropic_beta: ['context-1m-2025-08-07'],
      max_tokens: 2000,
    });
  });

  it('takes per-file options from the object metadata', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    await pipeline.run('inputs/opts.jsonl', plain('a'), {
      model: 'sonnet-4.5',
      endpoint: 'regional',
      'max-tokens': '77',
    });

    // Assess
    expect(pipeline.model.calls[0]).toMatchObject({
      modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      body: { max_tokens: 77 },
    });
  });

  describe("a deployment's allowed models", () => {
    const allowOpusOnly = () =>
      pipelineHarness({
        enqueue: {
          defaults: { ...jobDefaults, allowedModelIds: ['global.anthropic.claude-opus-4-6-v1'] },
        },
      });

    it('answers a record naming another model with an error record, before any call', async () => {
      // Prepare
      const pipeline = allowOpusOnly();

      // Act
      await pipeline.run(
        'inputs/allowed.jsonl',
        [plain('a'), JSON.stringify({ id: 'b', prompt: 'x', model: 'haiku-4.5' })].join('\n'),
      );

      // Assess
      expect(pipeline.model.calls.map((call) => call.modelId)).toEqual([
        'global.anthropic.claude-opus-4-6-v1',
      ]);
      expect(pipeline.outputLines('inputs/allowed.jsonl')[1]).toMatchObject({
        id: 'b',
        status: 'errored',
        error: {
          code: 'MODEL_NOT_ALLOWED',
          message: expect.stringMatching(
            /global\.anthropic\.claude-haiku-4-5.* is not one of the models this deployment allows/,
          ),
        },
      });
    });

    it('fails a file whose metadata names another model at once', async () => {
      // Prepare
      const pipeline = allowOpusOnly();

      // Act
      const { outcome } = await pipeline.run('inputs/other.jsonl', plain('a'), { model: 'haiku-4.5' });

      // Assess
      expect(outcome).toMatchObject({
        kind: 'failed',
        reason: expect.stringMatching(/not one of the models/),
      });
      expect(pipeline.model.calls).toHaveLength(0);
    });
  });

  it('fails a job with a bad file option at once, sends nothing and says why', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    const { outcome } = await pipeline.run('inputs/bad.jsonl', plain('a'), {
      model: 'haiku-4.5',
      endpoint: 'regional',
      region: 'x',
    });

    // Assess
    expect(outcome).toMatchObject({
      kind: 'failed',
      reason: expect.stringMatching(/unknown file option region/),
    });
    expect(pipeline.model.calls).toHaveLength(0);
    expect(pipeline.events.outcomes).toEqual([
      {
        detailType: 'Batch Job Failed',
        detail: expect.objectContaining({ reason: expect.stringMatching(/region/) }),
      },
    ]);
  });

  it('ignores a duplicate S3 event for the same object version', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    await pipeline.run('inputs/dup.jsonl', plain('a'));

    // Act
    const again = await startJob(
      objectCreated('inputs/dup.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Assess
    expect(again.kind).toBe('duplicate');
    expect(pipeline.queue.sent).toHaveLength(0);
    expect(pipeline.model.calls).toHaveLength(1);
  });

  it('says once that a job started, naming its input, model and lane, so a job found after aws s3 cp has its id', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/started.jsonl', plain('a'), {
      model: 'haiku-4.5',
      lane: 'auto',
    });

    // Act
    const first = await startJob(
      objectCreated('inputs/started.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    await startJob(
      objectCreated('inputs/started.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );

    // Assess
    const job = 'jobId' in first ? await pipeline.ledger.getJob(first.jobId) : undefined;
    expect(pipeline.events.starts).toEqual([
      {
        detailType: 'Batch Job Started',
        detail: {
          jobId: job?.jobId,
          input: `s3://${BUCKET}/inputs/started.jsonl`,
          model: 'haiku-4.5',
          lane: 'auto',
          createdAt: job?.createdAt,
        },
      },
    ]);
  });

  it('runs a job whose start could not be said: the event that must arrive is its end', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    failNext(pipeline.events, 'publish', { error: new Error('EventBridge is down') });

    // Act
    await pipeline.run('inputs/quiet.jsonl', plain('a'));

    // Assess
    expect(pipeline.events.starts).toEqual([]);
    expect(pipeline.events.outcomes).toEqual([
      expect.objectContaining({ detailType: 'Batch Job Completed' }),
    ]);
  });

  it('fails a file of blank lines at once, saying it has no records, rather than writing an empty output', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    await pipeline.run('inputs/empty.jsonl', '\n\n');

    // Assess
    expect(pipeline.events.outcomes).toEqual([
      expect.objectContaining({
        detailType: 'Batch Job Failed',
        detail: expect.objectContaining({ reason: expect.stringMatching(/empty\.jsonl has no records/) }),
      }),
    ]);
    expect(pipeline.model.calls).toEqual([]);
  });
});

describe('retries through the failure table', () => {
  it("makes a job's last call, throttled, again once Bedrock's bucket holds what it reserves for it", async () => {
    // Prepare: the first call throttled; the clock is the harness's, moved only by waits.
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const calledAt: number[] = [];
    const pipeline = pipelineHarness({
      clock,
      budget: new MemoryBudget({ tokensPerMinute: 60_000 }, () => clock.now),
      worker: { tokensPerMinute: 60_000 },
      answer: (_, __, call) => {
        calledAt.push(clock.now);
        if (call === 1) throw awsError('ThrottlingException', 429);
        return textResponse('again');
      },
    });

    // Act
    const { verdicts } = await pipeline.run('inputs/refill.jsonl', plain('a'));

    // Assess: at 1,000 tokens a second, the reservation (its input and 256 max_tokens) takes over 256 ms to
    // come back into Bedrock's bucket; the queue would have taken a second at least.
    const [first = 0, again = 0] = calledAt;
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(['done']);
    expect(again - first).toBeGreaterThan(256);
    expect(again - first).toBeLessThan(1_000);
  });

  it.each([
    // The file's only record: its job's last call. Bedrock's bucket refilled first; the budget told of the
    // batch's throttles once, at its end.
    ['makes a throttled call again in the invocation once Bedrock can take it', 1, ['done'], [], 1],
    [
      "sends a call throttled twice back through the queue, with the second attempt's backoff",
      2,
      ['retry', 'done'],
      [2],
      1,
    ],
    [
      'makes a call throttled on its next delivery again there too, telling the budget after each batch',
      3,
      ['retry', 'done'],
      [2],
      2,
    ],
  ])('%s', async (_case, throttled, kinds, delays, told) => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: (_, __, call) => {
        if (call <= throttled) throw awsError('ThrottlingException', 429);
        return textResponse('finally');
      },
    });

    // Act
    const { verdicts } = await pipeline.run('inputs/throttle.jsonl', plain('a'));

    // Assess
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(kinds);
    expect(verdicts.flatMap((verdict) => (verdict.kind === 'retry' ? [verdict.delaySeconds] : []))).toEqual(
      delays,
    );
    expect(pipeline.model.calls).toHaveLength(throttled + 1);
    expect(pipeline.budget.throttles).toHaveLength(told);
    expect(pipeline.outputLines('inputs/throttle.jsonl')[0]).toMatchObject({
      status: 'succeeded',
      text: 'finally',
    });
  });

  it('says in the manifest that a call which got no answer may have been billed, and the most it may have cost', async () => {
    // Prepare: the first call's connection breaks before Bedrock answers; the second is answered.
    const pipeline = pipelineHarness({
      answer: (_, __, call) => {
        if (call === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return textResponse('answered');
      },
    });
    const upperInput = estimateInputTokens({
      messages: [{ role: 'user', content: 'Prompt a' }],
      max_tokens: 256,
    }).upper;

    // Act
    await pipeline.run('inputs/unanswered.jsonl', plain('a'));

    // Assess: Opus 4.6 through the global profile, $5 and $25 a million tokens; max_tokens 256
    const manifest = pipeline.manifest('inputs/unanswered.jsonl');
    expect(manifest).toMatchObject({
      successRecordCount: 1,
      uncounted: {
        calls: 1,
        unanswered: 1,
        abandoned: 0,
        maxCostUsd: (upperInput * 5 + 256 * 25) / 1_000_000,
      },
    });
    expect(manifest?.estimatedCostUsd).toBe((10 * 5 + 5 * 25) / 1_000_000);
  });

  it('counts the tokens of a model with no known price and says its cost is unknown, never guessed', async () => {
    // Prepare: one record to Sonnet 4.6 (no price in the catalog), one to the priced default.
    const pipeline = pipelineHarness();
    const request = (customId: string, model?: string) =>
      JSON.stringify({
        custom_id: customId,
        params: {
          ...(model === undefined ? {} : { model }),
          max_tokens: 100,
          messages: [{ role: 'user', content: 'Hi' }],
        },
      });

    // Act
    await pipeline.run(
      'inputs/unpriced.jsonl',
      `${request('new', 'claude-sonnet-4-6')}\n${request('known')}\n`,
    );

    // Assess: the priced record alone is in the cost (Opus 4.6, 10 in and 5 out).
    const manifest = pipeline.manifest('inputs/unpriced.jsonl');
    expect(manifest).toMatchObject({
      successRecordCount: 2,
      inputTokenCount: 20,
      unpriced: {
        records: 1,
        note: expect.stringMatching(/cost is unknown and estimatedCostUsd leaves it out/),
      },
    });
    expect(manifest?.estimatedCostUsd).toBe((10 * 5 + 5 * 25) / 1_000_000);
    expect(pipeline.model.calls.map((call) => call.modelId).sort()).toEqual([
      'global.anthropic.claude-opus-4-6-v1',
      'global.anthropic.claude-sonnet-4-6',
    ]);
  });

  it('refuses a record to a model with no known price when a spending cap holds the job, with the fix', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    const line = JSON.stringify({ id: 'new', prompt: 'Hi', model: 'sonnet-4.6' });

    // Act
    await pipeline.run('inputs/capped-unpriced.jsonl', `${line}\n`, { 'max-cost': '5' });

    // Assess
    expect(pipeline.model.calls).toEqual([]);
    expect(pipeline.outputLines('inputs/capped-unpriced.jsonl')).toMatchObject([
      {
        id: 'new',
        status: 'errored',
        error: {
          code: 'COST_UNKNOWN',
          message: expect.stringMatching(
            /Claude Sonnet 4\.6 has no price in the catalog, so a call to it cannot be held to its spending cap of \$5/,
          ),
        },
      },
    ]);
  });

  it('still says so when the worker dies after giving the record back, before it counted anything', async () => {
    // Prepare: the call gets no answer, the record is released, and the batch dies before its counts land.
    const pipeline = pipelineHarness({
      answer: (_, __, call) => {
        if (call === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return textResponse('answered');
      },
    });
    const message = await queuedRecord(pipeline, 'inputs/lost.jsonl', `${plain('a')}\n`);
    failNext(pipeline.ledger, 'completeRecords');

    // Act
    const died = await pipeline.work(message).catch((error: Error) => error.name);
    await pipeline.work(message);
    await pipeline.finalizeAll();

    // Assess
    expect(died).toBe('InjectedFault');
    expect(pipeline.model.calls).toHaveLength(2);
    expect(pipeline.manifest('inputs/lost.jsonl')).toMatchObject({
      successRecordCount: 1,
      uncounted: { calls: 1, unanswered: 1, abandoned: 0 },
    });
  });

  it('says nothing of uncounted calls when every call was answered, errors included', async () => {
    const pipeline = pipelineHarness({
      answer: () => {
        throw awsError('ValidationException', 400);
      },
    });
    await pipeline.run('inputs/answered.jsonl', plain('a'));
    expect(pipeline.manifest('inputs/answered.jsonl')).not.toHaveProperty('uncounted');
  });

  it('writes a never-retry error at once', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: () => {
        throw awsError('ValidationException', 400);
      },
    });

    // Act
    await pipeline.run('inputs/never.jsonl', plain('a'));

    // Assess
    expect(pipeline.model.calls).toHaveLength(1);
    expect(pipeline.outputLines('inputs/never.jsonl')[0]).toMatchObject({
      status: 'errored',
      error: {
        code: 'ValidationException',
        message: expect.stringMatching(/^ValidationException from AWS/),
      },
    });
  });

  it('gives up on a record that exhausts its attempts with the last cause, and the job still completes', async () => {
    // Prepare
    const pipeline = pipelineHarness({
      answer: () => {
        throw awsError('ModelTimeoutException', 408);
      },
    });

    // Act
    await pipeline.run('inputs/timeout.jsonl', plain('a'));

    // Assess
    expect(pipeline.model.calls).toHaveLength(3);
    expect(pipeline.outputLines('inputs/timeout.jsonl')[0]).toMatchObject({
      status: 'errored',
      error: {
        code: 'ModelTimeoutException',
        message: expect.stringMatching(/gave up: ModelTimeoutException persisted through 3 attempts/),
      },
    });
    expect(pipeline.manifest('inputs/timeout.jsonl')).toMatchObject({ errorRecordCount: 1 });
  });

  it("counts each class's failures against its own limit: two throttles do not use up a timeout's attempts", async () => {
    // Prepare
    const failures = [
      'ThrottlingException',
      'ThrottlingException',
      'ModelTimeoutException',
      'ModelTimeoutException',
    ];
    const pipeline = pipelineHarness({
      answer: (_, __, call) => {
        const name = failures[call - 1];
        if (name !== undefined) throw awsError(name, name === 'ThrottlingException' ? 429 : 408);
        return textResponse('after four failures');
      },
    });

    // Act
    const { verdicts } = await pipeline.run('inputs/mixed-failures.jsonl', plain('a'));

    // Assess
    // The second throttle comes in the invocation that made the first call again: four failures, three deliveries.
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(['retry', 'retry', 'retry', 'done']);
    expect(pipeline.outputLines('inputs/mixed-failures.jsonl')[0]).toMatchObject({
      status: 'succeeded',
      text: 'after four failures',
    });
  });
});

describe('exactly once', () => {
  it('counts a duplicated delivery once and never calls Bedrock for it again', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/twice.jsonl', `${plain('a')}\n${plain('b')}\n`);
    await startJob(
      objectCreated('inputs/twice.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    const [first] = pipeline.queue.sent;
    if (first === undefined) throw new Error('no message');

    // Act
    const verdicts = [await pipeline.work(first), await pipeline.work(first)];
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    expect(verdicts).toMatchObject([
      {
        kind: 'done',
        status: 'succeeded',
        result: { completion: { inputTokens: 10, outputTokens: 5, costNanoUsd: 175_000 } },
      },
      { kind: 'done', status: 'already-done' },
    ]);
    expect(verdicts[1]).not.toHaveProperty('result');
    expect(pipeline.model.calls).toHaveLength(2);
    expect(pipeline.manifest('inputs/twice.jsonl')).toMatchObject({
      totalRecordCount: 2,
      successRecordCount: 2,
    });
  });

  it('recovers a worker killed between the result write and the ledger update without a second call', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    const message = await queuedRecord(pipeline, 'inputs/crash.jsonl', `${plain('a')}\n`);
    const completeRecords = pipeline.ledger.completeRecords.bind(pipeline.ledger);
    pipeline.ledger.completeRecords = async () => {
      throw new Error('killed');
    };

    // Act
    const crashed = await pipeline.work(message).catch((error: Error) => error.message);
    pipeline.ledger.completeRecords = completeRecords;
    const whileLeaseHeld = await pipeline.work(message);
    pipeline.clock.now += 61_000;
    const afterLease = await pipeline.work(message);
    await pipeline.finalizeAll();

    // Assess
    expect(crashed).toBe('killed');
    expect(whileLeaseHeld).toMatchObject({ kind: 'retry' });
    expect(afterLease).toMatchObject({
      kind: 'done',
      status: 'succeeded',
      result: { completion: { inputTokens: 10 } },
    });
    expect(pipeline.model.calls).toHaveLength(1);
    expect(pipeline.manifest('inputs/crash.jsonl')).toMatchObject({
      successRecordCount: 1,
      inputTokenCount: 10,
    });
  });

  it('counts an attempt whose worker died mid-call as uncounted: its call may have been billed', async () => {
    // Prepare: the first attempt's worker dies after Bedrock answered, before its result is stored.
    const pipeline = pipelineHarness();
    const message = await queuedRecord(pipeline, 'inputs/died.jsonl', `${plain('a')}\n`);
    const put = pipeline.store.put.bind(pipeline.store);
    pipeline.store.put = async () => {
      throw new Error('killed');
    };

    // Act
    const died = await pipeline.work(message).catch((error: Error) => error.message);
    pipeline.store.put = put;
    pipeline.clock.now += 61_000;
    await pipeline.work(message);
    await pipeline.finalizeAll();

    // Assess: two calls, one answer counted; the dead worker counted nothing, so its call is said to be uncounted
    expect(died).toBe('killed');
    expect(pipeline.model.calls).toHaveLength(2);
    expect(pipeline.manifest('inputs/died.jsonl')).toMatchObject({
      successRecordCount: 1,
      inputTokenCount: 10,
      uncounted: { calls: 1, unanswered: 0, abandoned: 1, maxCostUsd: expect.any(Number) },
      stats: { retries: { bedrockCalls: 1 } },
    });
  });

  it('keeps the first result when two attempts race to store one', async () => {
    // Prepare
    const pipeline = pipelineHarness({ answer: (_, __, call) => textResponse(`answer ${call}`) });
    const message = await queuedRecord(pipeline, 'inputs/race.jsonl', `${plain('a')}\n`);
    // The other attempt stored its result and was counted...
    await pipeline.work(message);
    // ...while this one had passed the checks before it did.
    pipeline.ledger.doneRecords = async () => new Set();
    pipeline.ledger.leaseRecord = async () => ({
      kind: 'acquired',
      attempt: 1,
      failures: {},
      releases: 0,
      unanswered: 0,
    });

    // Act
    const verdict = await pipeline.work(message);
    await pipeline.finalizeAll();

    // Assess: it adopts the stored result, and the ledger counted the record once, for the other attempt.
    expect(verdict).toEqual({ kind: 'done', status: 'already-done' });
    expect(pipeline.outputLines('inputs/race.jsonl')).toEqual([
      expect.objectContaining({ text: 'answer 1' }),
    ]);
    expect(pipeline.manifest('inputs/race.jsonl')).toMatchObject({ successRecordCount: 1 });
  });
});

describe('reading a large file in several invocations', () => {
  it('checkpoints between chunks, continues where it stopped and counts every line once', async () => {
    // Prepare
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 2 } });
    const lines = Array.from({ length: 7 }, (_, index) => plain(`r${index}`));
    pipeline.store.putObject(
      BUCKET,
      'inputs/big.jsonl',
      `${lines.slice(0, 3).join('\r\n')}\r\n\r\n${lines.slice(3).join('\n')}`,
    );
    let chunks = 0;
    const stopAfterEachChunk = () => {
      chunks += 1;
      return true;
    };

    // Act
    const outcomes = [
      await startJob(
        objectCreated('inputs/big.jsonl'),
        pipeline.ports,
        pipeline.enqueueSettings,
        stopAfterEachChunk,
      ),
    ];
    while (pipeline.trigger.continued.length > 0) {
      const jobId = pipeline.trigger.continued.shift() ?? '';
      outcomes.push(await continueJob(jobId, pipeline.ports, pipeline.enqueueSettings, stopAfterEachChunk));
    }
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(['continued', 'continued', 'continued', 'read']);
    expect(chunks).toBe(3);
    expect(pipeline.outputLines('inputs/big.jsonl').map((line) => [line.id, line.line])).toEqual([
      ['r0', 1],
      ['r1', 2],
      ['r2', 3],
      ['r3', 5],
      ['r4', 6],
      ['r5', 7],
      ['r6', 8],
    ]);
    expect(pipeline.manifest('inputs/big.jsonl')).toMatchObject({
      totalRecordCount: 7,
      successRecordCount: 7,
    });
  });

  it('finds a duplicate id across invocations', async () => {
    // Prepare
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 1 } });
    pipeline.store.putObject(
      BUCKET,
      'inputs/dupes.jsonl',
      `${plain('same')}\n${plain('other')}\n${plain('same')}\n`,
    );

    // Act
    await startJob(objectCreated('inputs/dupes.jsonl'), pipeline.ports, pipeline.enqueueSettings, () => true);
    while (pipeline.trigger.continued.length > 0) {
      await continueJob(
        pipeline.trigger.continued.shift() ?? '',
        pipeline.ports,
        pipeline.enqueueSettings,
        () => true,
      );
    }
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    expect(pipeline.outputLines('inputs/dupes.jsonl').map((line) => line.status)).toEqual([
      'succeeded',
      'succeeded',
      'errored',
    ]);
  });
});

describe('the shared token budget', () => {
  /**
   * Until answers are seen, each plain record is expected to cost the most Bedrock may charge for it: its
   * input estimate (9 tokens) and max_tokens 256 x 5, 1,289 tokens.
   */
  const budgetedPipeline = (
    tokensPerMinute: number,
    answer?: HarnessOptions['answer'],
    answering?: HarnessOptions['answering'],
  ) => {
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const budget = new MemoryBudget({ tokensPerMinute }, () => clock.now);
    return pipelineHarness({
      budget,
      clock,
      ...(answer === undefined ? {} : { answer }),
      ...(answering === undefined ? {} : { answering }),
    });
  };
  const fiveRecords = ['a', 'b', 'c', 'd', 'e'].map((id) => plain(id, 'hi')).join('\n');

  it('reserves for a whole batch in one write and settles it in one, counting it in one ledger transaction', async () => {
    // Prepare
    const pipeline = budgetedPipeline(1_000_000);
    pipeline.store.putObject(BUCKET, 'inputs/one-write.jsonl', fiveRecords);
    await startJob(
      objectCreated('inputs/one-write.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    const transactionsBefore = pipeline.ledger.transactions;

    // Act
    await pipeline.drain();

    // Assess
    expect(pipeline.model.calls).toHaveLength(5);
    expect(pipeline.budget.asked).toEqual([
      { key: 'us-west-2#global.anthropic.claude-opus-4-6-v1', tokens: Array(5).fill(1_289) },
    ]);
    expect(pipeline.budget.writes).toBe(2);
    expect(pipeline.ledger.transactions - transactionsBefore).toBe(1);
  });

  it('waits in the invocation until each call has its tokens, and sends nothing back to the queue', async () => {
    // Prepare: 5,000 tokens a minute; answers charged what was expected (9 + 256 x 5 = 1,289), so nothing is
    // freed early: three records start at once, the fourth and fifth wait for the refill.
    const pipeline = budgetedPipeline(5_000, () =>
      textResponse('full', { input_tokens: 9, output_tokens: 256 }),
    );
    const started = pipeline.clock.now;

    // Act
    const { verdicts } = await pipeline.run('inputs/wait.jsonl', fiveRecords);

    // Assess: the fourth needs 1,289 - 1,133 = 156 tokens (1.872 s), the fifth 1,289 more (15.468 s later).
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(verdicts.map((verdict) => (verdict.kind === 'done' ? verdict.waitedMs : 'not done'))).toEqual([
      undefined,
      undefined,
      undefined,
      1_872,
      17_340,
    ]);
    expect(pipeline.clock.now - started).toBe(17_340);
    expect(pipeline.queue.delayed).toEqual([]);
    expect(pipeline.manifest('inputs/wait.jsonl')).toMatchObject({ successRecordCount: 5 });
  });

  /**
   * Each record reserves 9 + 256 = 265 and is charged 9 + 256 x 5 = 1,289, as expected; answers come once
   * the calls under way have started. At 5,000 tokens a minute with 4,500 left by earlier work, three calls
   * start at once at that charge, the fourth once 656 more tokens are in (7.872 s), the fifth 15.468 s later.
   * At 10,000 tokens a minute with 2,000 left, one starts at once, and the others as the refill brings each
   * one's charge.
   */
  it.each([
    [
      "starts its job's last calls on what Bedrock reserves for them when no other grant stands behind them",
      { tokensPerMinute: 5_000, left: 4_500, grantBehindAt: undefined },
      Array(5).fill(undefined),
    ],
    [
      "holds its job's last calls at what they will be charged while another batch's grant stands behind them",
      { tokensPerMinute: 5_000, left: 4_500, grantBehindAt: 60_000 },
      [undefined, undefined, undefined, 7_872, 23_340],
    ],
    [
      "keeps room for one of its job's last answers on its way back, owing its whole charge beyond what it reserved",
      { tokensPerMinute: 10_000, left: 2_000, grantBehindAt: undefined },
      [undefined, 3_468, 11_202, 18_936, 26_670],
    ],
  ])('%s', async (_case, { tokensPerMinute, left, grantBehindAt }, waits) => {
    // Prepare
    const pipeline = budgetedPipeline(
      tokensPerMinute,
      () => textResponse('full', { input_tokens: 9, output_tokens: 256 }),
      () => new Promise((resolve) => setImmediate(resolve)),
    );
    const key = 'us-west-2#global.anthropic.claude-opus-4-6-v1';
    const started = pipeline.clock.now;
    const fullAt = started + ((tokensPerMinute - left) / tokensPerMinute) * MINUTE_MS;
    pipeline.budget.buckets.set(key, { ...pipeline.budget.stateOf(key, started), fullAt });
    if (grantBehindAt !== undefined)
      vi.spyOn(pipeline.budget, 'spendableFrom').mockResolvedValue(started + grantBehindAt);

    // Act
    const { verdicts } = await pipeline.run('inputs/last-calls.jsonl', fiveRecords);

    // Assess: the batch carries the file's last line, so its calls are the job's last; what they owe lands
    // after all of them have started.
    expect(verdicts.map((verdict) => (verdict.kind === 'done' ? verdict.waitedMs : 'not done'))).toEqual(
      waits,
    );
    expect(pipeline.clock.now - started).toBe(waits.at(-1) ?? 0);
    expect(pipeline.manifest('inputs/last-calls.jsonl')).toMatchObject({ successRecordCount: 5 });
  });

  it('starts waiting calls at once when the budget says tokens given back let all it granted be spent now', async () => {
    // Prepare: the waiting setup above, with another batch having given back enough for everything granted.
    const pipeline = budgetedPipeline(5_000, () =>
      textResponse('full', { input_tokens: 9, output_tokens: 256 }),
    );
    const started = pipeline.clock.now;
    const asked = vi.spyOn(pipeline.budget, 'spendableFrom').mockResolvedValue(started);

    // Act
    const { verdicts } = await pipeline.run('inputs/given-back.jsonl', fiveRecords);

    // Assess: the worker asked while its fourth call waited, and no call waited for the refill.
    expect(asked).toHaveBeenCalled();
    expect(verdicts.map((verdict) => (verdict.kind === 'done' ? verdict.waitedMs : 'not done'))).toEqual(
      Array(5).fill(undefined),
    );
    expect(pipeline.clock.now).toBe(started);
  });

  it('starts a call as soon as ended calls free what Bedrock reserved beyond their charge', async () => {
    // Prepare: the same quota, answers charged 10 + 5 x 5 = 35 of the 1,289 each was expected to cost.
    const pipeline = budgetedPipeline(5_000);
    const started = pipeline.clock.now;

    // Act
    const { verdicts } = await pipeline.run('inputs/recycled.jsonl', fiveRecords);

    // Assess: the fourth and fifth start on what the first calls freed, without waiting for the refill.
    expect(verdicts.map((verdict) => (verdict.kind === 'done' ? verdict.waitedMs : 'not done'))).toEqual(
      Array(5).fill(undefined),
    );
    expect(pipeline.clock.now).toBe(started);
    expect(pipeline.model.calls).toHaveLength(5);
  });

  it('sends calls it cannot start before the deadline back to wait, without spending an attempt', async () => {
    // Prepare: 3,000 tokens a minute; two records fit, a third after 17.3 s, a fourth only after the 30-second
    // deadline.
    const pipeline = budgetedPipeline(3_000);

    // Act
    const { verdicts } = await pipeline.run('inputs/later.jsonl', fiveRecords);

    // Assess
    expect(verdicts.slice(0, 5).map((verdict) => verdict.kind)).toEqual([
      'done',
      'done',
      'done',
      'wait',
      'wait',
    ]);
    expect(verdicts[3]).toMatchObject({ kind: 'wait', cause: 'budget' });
    expect(pipeline.queue.delayed.map(({ message }) => message.waits)).toEqual(expect.arrayContaining([1]));
    const attempts = [...pipeline.ledger.records.values()].map((record) => record.attempts);
    expect(attempts).toEqual([1, 1, 1, 1, 1]);
    expect(pipeline.model.calls).toHaveLength(5);
    expect(pipeline.manifest('inputs/later.jsonl')).toMatchObject({ successRecordCount: 5 });
  });

  it("sends a record waiting long for its own model's tokens back to wait, so another model's record in its batch finishes now", async () => {
    // Prepare: Opus at 1,800 tokens a minute: its first record (expected at 1,289) leaves 511 in the bucket,
    // the second has its tokens 26 s later, within the invocation's deadline; Haiku has all it needs. All
    // three in one batch.
    const clock = { now: Date.parse('2026-11-25T10:00:00Z') };
    const opus = 'us-west-2#global.anthropic.claude-opus-4-6-v1';
    const budget = new MemoryBudget(
      { tokensPerMinute: 1_000_000, perKey: { [opus]: { tokensPerMinute: 1_800 } } },
      () => clock.now,
    );
    const pipeline = pipelineHarness({ budget, clock });
    const lines = [
      JSON.stringify({ id: 'first', prompt: 'hi', model: 'opus-4.6' }),
      JSON.stringify({ id: 'second', prompt: 'hi', model: 'opus-4.6' }),
      JSON.stringify({ id: 'quick', prompt: 'hi', model: 'haiku-4.5' }),
    ];

    // Act
    const { verdicts } = await pipeline.run('inputs/two-models.jsonl', lines.join('\n'));

    // Assess: Haiku's answer is counted in the first batch; Opus's second record waits in the queue, not in it.
    expect(verdicts.slice(0, 3)).toEqual([
      expect.objectContaining({ kind: 'done', status: 'succeeded' }),
      expect.objectContaining({ kind: 'wait', cause: 'budget' }),
      expect.objectContaining({ kind: 'done', status: 'succeeded' }),
    ]);
    expect((verdicts[1] as { delaySeconds: number }).delaySeconds).toBeGreaterThan(20);
    expect(pipeline.manifest('inputs/two-models.jsonl')).toMatchObject({ successRecordCount: 3 });
    expect([...pipeline.ledger.records.values()].map((record) => record.attempts)).toEqual([1, 1, 1]);
  });

  it('settles each batch to what Bedrock charged: input, cache writes and output x 5', async () => {
    // Prepare
    const pipeline = budgetedPipeline(1_000_000, () =>
      textResponse('charged', {
        input_tokens: 40,
        output_tokens: 30,
        cache_creation_input_tokens: 10,
      } as never),
    );

    // Act
    await pipeline.run('inputs/settle.jsonl', plain('a'));

    // Assess: 40 + 10 + 30 x 5 = 200 charged, so the bucket is 200 tokens short of full, and the lead's refill
    // that the first take from a full bucket does not count.
    const key = 'us-west-2#global.anthropic.claude-opus-4-6-v1';
    const state = pipeline.budget.stateOf(key, pipeline.clock.now);
    expect(levelAt(state, pipeline.clock.now)).toBeCloseTo(1_000_000 - 200 - leadRefill(1_000_000), 1);
  });

  it('learns from answers: later batches reserve the calibrated input and the output the job produces', async () => {
    // Prepare: answers of 100 output tokens (500 quota tokens, more than max_tokens 256) on 6 input tokens.
    const pipeline = budgetedPipeline(1_000_000, () =>
      textResponse('x', { input_tokens: 6, output_tokens: 100 }),
    );
    const fifteen = Array.from({ length: 15 }, (_, index) => plain(`r${index}`, 'hi')).join('\n');

    // Act
    await pipeline.run('inputs/learn.jsonl', fifteen);

    // Assess: the first batch takes the most Bedrock may charge (9 + 256 x 5), more than its answers cost, so
    // it needs no top-up; the second takes the learnt 6 + 100 x 5, which its answers cost.
    const asked = pipeline.budget.asked.map((ask) => ask.tokens);
    expect(asked).toEqual([Array(10).fill(1_289), Array(5).fill(506)]);
    // Settled, the bucket is short of full by exactly what the 15 answers were charged, and the lead's
    // refill that follows the first take from a full bucket.
    const state = pipeline.budget.stateOf(
      'us-west-2#global.anthropic.claude-opus-4-6-v1',
      pipeline.clock.now,
    );
    expect(levelAt(state, pipeline.clock.now)).toBeCloseTo(1_000_000 - 15 * 506 - leadRefill(1_000_000), 1);
  });

  it('counts a large record exactly with CountTokens before reserving for it', async () => {
    // Prepare: about 90,000 bytes of prompt, over the 20,000-token estimate threshold.
    const pipeline = budgetedPipeline(1_000_000);

    // Act
    await pipeline.run('inputs/large.jsonl', plain('big', 'word '.repeat(18_000)));

    // Assess: the stand-in's count is 22,500 + 3; before any answer, the most its 256 output tokens may cost.
    expect(pipeline.model.tokenCounts).toEqual([
      { region: 'us-west-2', modelId: 'anthropic.claude-opus-4-6-v1' },
    ]);
    expect(pipeline.budget.asked[0]?.tokens).toEqual([22_503 + 256 * 5]);
  });

  it.each([
    ['empties the budget once per batch, keeping the rate, at a first throttle', undefined, 100_000],
    ['lowers the rate once per batch when throttles follow within a minute', -10_000, 70_000],
  ])('%s', async (_case, lastThrottleAfter, expectedRate) => {
    // Prepare
    // b and c throttled on their first calls, each made again in the invocation.
    const key = 'us-west-2#global.anthropic.claude-opus-4-6-v1';
    const throttled = new Set<string>();
    const pipeline = budgetedPipeline(100_000, (_, body) => {
      const prompt = ['Prompt b', 'Prompt c'].find((text) => JSON.stringify(body).includes(text));
      if (prompt !== undefined && !throttled.has(prompt)) {
        throttled.add(prompt);
        throw awsError('ThrottlingException', 429);
      }
      return textResponse('ok');
    });
    pipeline.store.putObject(
      BUCKET,
      'inputs/throttled.jsonl',
      [plain('a'), plain('b'), plain('c')].join('\n'),
    );
    await startJob(
      objectCreated('inputs/throttled.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    if (lastThrottleAfter !== undefined) {
      const { now } = pipeline.clock;
      pipeline.budget.buckets.set(key, {
        ...pipeline.budget.stateOf(key, now),
        throttledAt: now + lastThrottleAfter,
      });
    }

    // Act
    const verdicts = await pipeline.workBatch(pipeline.queue.sent.splice(0));

    // Assess
    expect(verdicts.map((verdict) => verdict.kind)).toEqual(['done', 'done', 'done']);
    expect(verdicts.map((verdict) => verdict.throttledHere?.calls)).toEqual([undefined, 1, 1]);
    expect(pipeline.budget.throttles).toHaveLength(1);
    const state = pipeline.budget.stateOf(key, pipeline.clock.now);
    expect(state.tokensPerMinute).toBe(expectedRate);
    if (lastThrottleAfter === undefined) expect(levelAt(state, pipeline.clock.now)).toBeLessThanOrEqual(0);
  });

  it("waits for Bedrock's daily quota without spending an attempt, and pauses the model's budget", async () => {
    // Prepare
    const pipeline = budgetedPipeline(1_000_000, (_, __, call) => {
      if (call === 1) {
        throw awsError(
          'ThrottlingException',
          429,
          'Too many tokens per day, please wait before trying again.',
        );
      }
      return textResponse('a new day');
    });

    // Act
    const { verdicts } = await pipeline.run('inputs/daily.jsonl', plain('a'));

    // Assess
    expect(verdicts).toMatchObject([
      { kind: 'wait', cause: 'daily-quota', delaySeconds: 900 },
      { kind: 'done', status: 'succeeded' },
    ]);
    expect(pipeline.budget.pauses).toHaveLength(1);
    expect([...pipeline.ledger.records.values()].map((record) => record.attempts)).toEqual([1]);
    expect(pipeline.outputLines('inputs/daily.jsonl')[0]).toMatchObject({ status: 'succeeded' });
  });
});

describe('cancel', () => {
  it('turns the records not yet run into canceled results and ends the job canceled, with its own event', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    pipeline.store.putObject(BUCKET, 'inputs/cancel.jsonl', `${plain('a')}\n${plain('b')}\n${plain('c')}\n`);
    const started = await startJob(
      objectCreated('inputs/cancel.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => false,
    );
    const jobId = 'jobId' in started ? started.jobId : '';
    const [first] = pipeline.queue.sent.splice(0, 1);
    if (first === undefined) throw new Error('no message');
    await pipeline.work(first);

    // Act
    const canceled = await pipeline.ledger.cancelJob(jobId);
    await pipeline.drain();
    await pipeline.finalizeAll();

    // Assess
    expect(canceled).toBe(true);
    expect(pipeline.model.calls).toHaveLength(1);
    expect(pipeline.outputLines('inputs/cancel.jsonl').map((line) => line.status)).toEqual([
      'succeeded',
      'canceled',
      'canceled',
    ]);
    expect(pipeline.manifest('inputs/cancel.jsonl')).toMatchObject({
      status: 'canceled',
      canceledRecordCount: 2,
      processedRecordCount: 1,
    });
    // Announced as what it is, not as a completion.
    expect(pipeline.events.outcomes).toEqual([
      expect.objectContaining({
        detailType: 'Batch Job Canceled',
        detail: expect.objectContaining({ status: 'canceled' }),
      }),
    ]);
    expect((await pipeline.ledger.getJob(jobId))?.status).toBe('canceled');
  });

  it('stops a job at its spending cap: records not yet run end canceled, and the manifest and event say why', async () => {
    // Prepare: 25 records at $0.000175 each, run 10 a batch; a cap of $0.001, passed within the first batch.
    const pipeline = pipelineHarness();
    const lines = Array.from({ length: 25 }, (_, index) => plain(`r${index}`)).join('\n');

    // Act
    await pipeline.run('inputs/capped.jsonl', lines, { 'max-cost': '0.001' });

    // Assess
    const statuses = pipeline.outputLines('inputs/capped.jsonl').map((line) => line.status);
    expect(statuses.filter((status) => status === 'succeeded')).toHaveLength(10);
    expect(statuses.filter((status) => status === 'canceled')).toHaveLength(15);
    expect(pipeline.model.calls).toHaveLength(10);
    const reason = 'its spending cap of $0.001 was reached ($0.00175 spent)';
    expect(pipeline.manifest('inputs/capped.jsonl')).toMatchObject({ status: 'canceled', reason });
    expect(pipeline.events.outcomes).toEqual([
      expect.objectContaining({
        detailType: 'Batch Job Canceled',
        detail: expect.objectContaining({ reason }),
      }),
    ]);
  });

  it("stops every job once the deployment's daily spending cap is reached, and runs again the next day (UTC)", async () => {
    // Prepare: $0.000175 a record, run 10 a batch, a daily cap of $0.001: a file's first batch passes it.
    const clock = { now: Date.parse('2026-11-25T23:00:00Z') };
    const pipeline = pipelineHarness({ clock, worker: { maxDailyCostUsd: 0.001 } });
    const lines = (prefix: string) =>
      Array.from({ length: 15 }, (_, index) => plain(`${prefix}${index}`)).join('\n');
    const statusesOf = (key: string) => {
      const counts: Record<string, number> = {};
      for (const { status } of pipeline.outputLines(key))
        counts[String(status)] = (counts[String(status)] ?? 0) + 1;
      return counts;
    };

    // Act
    await pipeline.run('inputs/first.jsonl', lines('a'));
    await pipeline.run('inputs/second.jsonl', lines('b'));
    clock.now = Date.parse('2026-11-26T00:00:01Z');
    await pipeline.run('inputs/next-day.jsonl', lines('c'));

    // Assess: the second file, on the same day, calls nothing; the next day's spend starts from nothing.
    expect([statusesOf('inputs/first.jsonl'), statusesOf('inputs/second.jsonl')]).toEqual([
      { succeeded: 10, canceled: 5 },
      { canceled: 15 },
    ]);
    expect(statusesOf('inputs/next-day.jsonl')).toEqual({ succeeded: 10, canceled: 5 });
    expect(pipeline.model.calls).toHaveLength(20);
    const sameDay =
      "the deployment's daily spending cap of $0.001 was reached ($0.00175 spent on 2026-11-25, UTC)";
    expect(pipeline.manifest('inputs/second.jsonl')).toMatchObject({ status: 'canceled', reason: sameDay });
    expect(pipeline.manifest('inputs/next-day.jsonl')).toMatchObject({
      reason: "the deployment's daily spending cap of $0.001 was reached ($0.00175 spent on 2026-11-26, UTC)",
    });
    expect([
      await pipeline.ledger.spentOn('2026-11-25'),
      await pipeline.ledger.spentOn('2026-11-26'),
    ]).toEqual([1_750_000, 1_750_000]);
  });

  it('finalizes only once however often it is asked', async () => {
    // Prepare
    const pipeline = pipelineHarness();
    await pipeline.run('inputs/once.jsonl', plain('a'));
    const jobId = [...pipeline.ledger.jobs.keys()][0] ?? '';

    // Act
    const again = await finalizeJob(jobId, pipeline.ports);

    // Assess
    expect(again).toEqual({ kind: 'already-done' });
    expect(pipeline.events.outcomes).toHaveLength(1);
  });
});

/** The refill a first take from a full bucket does not count, at `tokensPerMinute`. */
function leadRefill(tokensPerMinute: number): number {
  return (tokensPerMinute * FULL_BUCKET_LEAD_MS) / MINUTE_MS;
}
