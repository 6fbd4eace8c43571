import { describe, expect, it } from 'vitest';
import { PipelineError } from '../../shared/errors.ts';
import { objectKeyCandidates, parseObjectCreated } from '../../shared/events/object-created.ts';
import {
  INLINE_MESSAGE_BYTES,
  parseRecordMessage,
  type RecordMessage,
  recordMessageBody,
} from '../../shared/messages/record-message.ts';
import {
  parseStagedRecord,
  type StagedRecord,
  stagedRecordLine,
} from '../../shared/messages/staged-record.ts';
import { readFixture, readJsonFixture } from '../support/factories.ts';

describe('parseObjectCreated', () => {
  it('reads the EventBridge S3 event fixture, decoding a form-encoded key first', () => {
    // Act
    const event = parseObjectCreated(readJsonFixture('s3-object-created.json'));

    // Assess
    expect(event).toMatchObject({
      bucket: 'bedrock-batch-example',
      eventKey: 'inputs/team+reports/Q3+r%C3%A9sum%C3%A9+%2B+notes.jsonl',
      keyCandidates: [
        'inputs/team reports/Q3 résumé + notes.jsonl',
        'inputs/team+reports/Q3+r%C3%A9sum%C3%A9+%2B+notes.jsonl',
      ],
      versionId: 'IYV3p45BT0ac8hjHg1houSdS1a.Mro8e',
      etag: 'b1946ac92492d2347c6235b4d2611184',
      size: 1442,
      region: 'us-west-2',
    });
  });

  it('keeps an unencoded key with spaces, "+" and non-ASCII among the candidates', () => {
    // Act
    const event = parseObjectCreated(readJsonFixture('s3-object-created-unencoded-key.json'));

    // Assess
    expect(event.keyCandidates).toContain('inputs/team reports/Q3 résumé + notes.jsonl');
  });

  it('refuses events of another kind with a clear error', () => {
    // Act
    const parse = () => parseObjectCreated(readJsonFixture('scheduled-sweep.json'));

    // Assess
    expect(parse).toThrow(PipelineError);
    expect(parse).toThrow(/Not an S3 "Object Created" event/);
  });
});

describe('objectKeyCandidates', () => {
  it.each([
    ['inputs/plain.jsonl', ['inputs/plain.jsonl']],
    ['inputs/red+flower.jsonl', ['inputs/red flower.jsonl', 'inputs/red+flower.jsonl']],
    ['inputs/a%3Ab.jsonl', ['inputs/a:b.jsonl', 'inputs/a%3Ab.jsonl']],
    ['inputs/100%.jsonl', ['inputs/100%.jsonl']],
    ['inputs/日本.jsonl', ['inputs/日本.jsonl']],
    ['inputs/%E6%97%A5%E6%9C%AC.jsonl', ['inputs/日本.jsonl', 'inputs/%E6%97%A5%E6%9C%AC.jsonl']],
  ])('%s may mean %j', (eventKey, candidates) => {
    expect(objectKeyCandidates(eventKey)).toEqual(candidates);
  });
});

describe('the SQS record message fixture', () => {
  it('holds record messages whose byte ranges are lines of the mixed sample file', () => {
    // Prepare
    const { Records } = readJsonFixture<{
      Records: Array<{ body: string; attributes: { ApproximateReceiveCount: string } }>;
    }>('sqs-record-batch.json');
    const file = readFixture('prompts/mixed.jsonl');

    // Act
    const messages = Records.map((record) => parseRecordMessage(record.body));

    // Assess
    expect(messages.map((message) => message.recordId)).toEqual(['summary-001', 'ticket-42']);
    for (const message of messages) {
      const line = JSON.parse(
        file.subarray(message.source.byteStart, message.source.byteEnd).toString('utf8'),
      );
      expect(line.recordId ?? line.custom_id).toBe(message.recordId);
    }
    expect(Records[1]?.attributes.ApproximateReceiveCount).toBe('3');
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['another version', '{"v": 3}', /Not a record message/],
    [
      'an empty byte range',
      JSON.stringify({
        v: 1,
        jobId: 'j',
        recordId: 'r',
        lineNumber: 1,
        source: { bucket: 'b', key: 'k', byteStart: 5, byteEnd: 5 },
      }),
      /empty byte range/,
    ],
  ])('refuses a body that is %s', (_case, body, message) => {
    expect(() => parseRecordMessage(body)).toThrow(message);
  });
});

/** A record message of the current version, by reference, or with its line when given. */
const message = (line?: string): RecordMessage => ({
  v: 2,
  jobId: 'job-1',
  recordId: 'r1',
  lineNumber: 4,
  source: { bucket: 'b', key: 'inputs/a.jsonl', byteStart: 100, byteEnd: 200 },
  ...(line === undefined ? {} : { line }),
});

describe('the body of a record message', () => {
  const lineOf = (prompt: string) => JSON.stringify({ id: 'r1', prompt });

  it.each([
    ['a short line', lineOf('Summarise "this" ticket, ünïcode and all'), true],
    ['a line just under the limit', lineOf('x'.repeat(INLINE_MESSAGE_BYTES - 300)), true],
    ['a line over the limit', lineOf('x'.repeat(INLINE_MESSAGE_BYTES)), false],
    ['a line whose escaped form is over the limit', lineOf('"'.repeat(INLINE_MESSAGE_BYTES / 2)), false],
    ['a line with a character SQS refuses', lineOf('end\uFFFF'), false],
  ])('carries %s inside the message: %s', (_case, line, inside) => {
    // Act
    const body = recordMessageBody(message(line));
    const read = parseRecordMessage(body);

    // Assess
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(inside ? INLINE_MESSAGE_BYTES : 1_000);
    expect(read.line).toBe(inside ? line : undefined);
    expect(read.source).toEqual(message().source);
  });

  it('reads a message of the first version, which has no line, as the current shape', () => {
    // Prepare
    const { line: _none, ...byReference } = message();

    // Act
    const read = parseRecordMessage(JSON.stringify({ ...byReference, v: 1 }));

    // Assess
    expect(read).toEqual(message());
  });
});

describe('a staged record of the batch lane', () => {
  const staged = (line?: string): StagedRecord => ({
    message: message(line),
    subject: { recordId: 'r1', lineNumber: 4, family: 'bedrock', modelInput: { messages: [] } },
  });

  it('reads what it wrote, its message with its line', () => {
    expect(parseStagedRecord(stagedRecordLine(staged('{"id":"r1"}')), 'part line 1')).toEqual(
      staged('{"id":"r1"}'),
    );
  });

  it('reads a line staged before it carried a version, with a message of the first version', () => {
    // Prepare: as earlier versions wrote it.
    const { v: _current, ...message } = staged().message;
    const line = JSON.stringify({
      message: { ...message, v: 1 },
      subject: { recordId: 'r1', lineNumber: 4 },
    });

    // Act
    const read = parseStagedRecord(line, 'part line 1');

    // Assess
    expect(read).toEqual({
      message: staged().message,
      subject: { recordId: 'r1', lineNumber: 4, family: undefined },
    });
  });

  it.each([
    ['not JSON', '{', /The staged record work\/a line 3 is not JSON/],
    [
      'without its subject',
      JSON.stringify({ v: 1, message: staged().message }),
      /work\/a line 3: [\s\S]*subject/,
    ],
    [
      'with a message of an unknown version',
      JSON.stringify({ v: 1, message: { v: 9 }, subject: staged().subject }),
      /Not a record message/,
    ],
  ])('refuses a line %s, naming where it is', (_case, line, message) => {
    expect(() => parseStagedRecord(line, 'work/a line 3')).toThrow(message);
  });
});
