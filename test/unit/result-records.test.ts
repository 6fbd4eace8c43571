import { describe, expect, it } from 'vitest';
import type { InputFamily, LineError } from '../../shared/input/records.ts';
import { buildManifest, emptyTotals } from '../../shared/output/manifest.ts';
import {
  lineErrorOutcome,
  lineErrorSubject,
  type MessagesResponse,
  type RecordOutcome,
  renderResultLine,
} from '../../shared/output/result-records.ts';

const response: MessagesResponse = {
  id: 'msg_bdrk_01',
  type: 'message',
  role: 'assistant',
  model: 'claude-opus-4-6',
  content: [
    { type: 'text', text: 'Hello' },
    { type: 'text', text: ', world' },
  ],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 12, output_tokens: 4 },
};
const throttled: RecordOutcome = {
  status: 'errored',
  failure: {
    code: 'ThrottlingException',
    httpStatus: 429,
    message: 'Too many tokens',
    anthropicType: 'rate_limit_error',
  },
};
const modelInput = { max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] };
const subject = (family: InputFamily) => ({ recordId: 'r1', lineNumber: 3, family, modelInput });

describe('renderResultLine', () => {
  describe.each<[InputFamily, RecordOutcome, object]>([
    ['bedrock', { status: 'succeeded', response }, { recordId: 'r1', modelInput, modelOutput: response }],
    [
      'bedrock',
      throttled,
      {
        recordId: 'r1',
        modelInput,
        error: { errorCode: 429, errorType: 'ThrottlingException', errorMessage: 'Too many tokens' },
      },
    ],
    [
      'bedrock',
      { status: 'canceled' },
      {
        recordId: 'r1',
        modelInput,
        error: {
          errorCode: 499,
          errorType: 'Canceled',
          errorMessage: 'The job was canceled before this record ran.',
        },
      },
    ],
    [
      'anthropic',
      { status: 'succeeded', response },
      { custom_id: 'r1', result: { type: 'succeeded', message: response } },
    ],
    [
      'anthropic',
      throttled,
      {
        custom_id: 'r1',
        result: {
          type: 'errored',
          error: { type: 'error', error: { type: 'rate_limit_error', message: 'Too many tokens' } },
        },
      },
    ],
    ['anthropic', { status: 'canceled' }, { custom_id: 'r1', result: { type: 'canceled' } }],
    ['anthropic', { status: 'expired' }, { custom_id: 'r1', result: { type: 'expired' } }],
    [
      'plain',
      { status: 'succeeded', response },
      {
        id: 'r1',
        line: 3,
        status: 'succeeded',
        text: 'Hello, world',
        stop_reason: 'end_turn',
        usage: { input_tokens: 12, output_tokens: 4 },
      },
    ],
    [
      'plain',
      throttled,
      {
        id: 'r1',
        line: 3,
        status: 'errored',
        error: { code: 'ThrottlingException', message: 'Too many tokens' },
      },
    ],
    ['plain', { status: 'canceled' }, { id: 'r1', line: 3, status: 'canceled' }],
  ])('a %s-family record', (family, outcome, expected) => {
    it(`that ${outcome.status} is written in its own family`, () => {
      // Act
      const line = renderResultLine(subject(family), outcome);

      // Assess
      expect(line).not.toContain('\n');
      expect(JSON.parse(line)).toEqual(expected);
    });
  });

  it('writes a max_tokens stop as a success whose stop_reason says so', () => {
    // Act
    const line = renderResultLine(subject('plain'), {
      status: 'succeeded',
      response: { ...response, stop_reason: 'max_tokens' },
    });

    // Assess
    expect(JSON.parse(line)).toMatchObject({ status: 'succeeded', stop_reason: 'max_tokens' });
  });
});

describe('line errors in the output', () => {
  const lineError = (overrides: Partial<LineError> = {}): LineError => ({
    lineNumber: 6,
    recordId: undefined,
    family: undefined,
    code: 'INVALID_JSON',
    message: 'Line 6 is not valid JSON.',
    ...overrides,
  });

  it('go through the failure table: never retried, 400, invalid_request_error', () => {
    // Act
    const outcome = lineErrorOutcome(lineError());

    // Assess
    expect(outcome).toEqual({
      status: 'errored',
      failure: expect.objectContaining({
        code: 'INVALID_JSON',
        httpStatus: 400,
        anthropicType: 'invalid_request_error',
      }),
    });
  });

  it('use the derived id and the fallback family when the line showed neither', () => {
    // Act
    const line = renderResultLine(lineErrorSubject(lineError(), 'anthropic'), lineErrorOutcome(lineError()));

    // Assess
    expect(JSON.parse(line)).toEqual({
      custom_id: 'line-6',
      result: {
        type: 'errored',
        error: {
          type: 'error',
          error: { type: 'invalid_request_error', message: 'Line 6 is not valid JSON.' },
        },
      },
    });
  });

  it('keep the id and family the line did show', () => {
    // Act
    const line = renderResultLine(
      lineErrorSubject(
        lineError({ recordId: 'dup', family: 'plain', code: 'DUPLICATE_RECORD_ID', message: 'dup' }),
        'bedrock',
      ),
      lineErrorOutcome(lineError({ code: 'DUPLICATE_RECORD_ID', message: 'dup' })),
    );

    // Assess
    expect(JSON.parse(line)).toEqual({
      id: 'dup',
      line: 6,
      status: 'errored',
      error: { code: 'DUPLICATE_RECORD_ID', message: 'dup' },
    });
  });
});

describe('buildManifest', () => {
  it('leads with the native batch manifest fields, then tokens, cost and the job details', () => {
    // Prepare
    const totals = {
      ...emptyTotals,
      totalRecordCount: 12,
      successRecordCount: 8,
      errorRecordCount: 3,
      canceledRecordCount: 1,
      inputTokenCount: 1_234,
      outputTokenCount: 567,
      cacheReadInputTokenCount: 89,
      cacheHitRecordCount: 8,
      costNanoUsd: 17_500_000,
      uncachedCostNanoUsd: 17_900_000,
    };

    // Act
    const manifest = buildManifest(totals, { jobId: 'job-1', endpoint: 'global' });

    // Assess
    expect(Object.keys(manifest).slice(0, 6)).toEqual([
      'totalRecordCount',
      'processedRecordCount',
      'successRecordCount',
      'errorRecordCount',
      'inputTokenCount',
      'outputTokenCount',
    ]);
    expect(manifest).toEqual({
      totalRecordCount: 12,
      processedRecordCount: 11,
      successRecordCount: 8,
      errorRecordCount: 3,
      inputTokenCount: 1_234,
      outputTokenCount: 567,
      canceledRecordCount: 1,
      cacheCreationInputTokenCount: 0,
      cacheReadInputTokenCount: 89,
      estimatedCostUsd: 0.0175,
      cache: {
        hitRate: 1,
        hitRecords: 8,
        missRecords: 0,
        writeTokens: 0,
        readTokens: 89,
        uncachedCostUsd: 0.0179,
        savingUsd: 0.0004,
      },
      pricesCheckedOn: '2026-11-01',
      jobId: 'job-1',
      endpoint: 'global',
    });
  });
});
