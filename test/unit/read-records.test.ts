import { describe, expect, it } from 'vitest';
import { parseLine } from '../../shared/input/parse-line.ts';
import { InMemoryRecordIdRegistry, readRecords } from '../../shared/input/read-records.ts';
import { bytes, chunked, readFixture } from '../support/factories.ts';

async function readAll(data: Uint8Array, chunkSize = 97) {
  const results = [];
  for await (const read of readRecords(chunked(data, chunkSize), {
    maxLineBytes: 25_000_000,
    registry: new InMemoryRecordIdRegistry(),
  })) {
    results.push(read);
  }
  return results;
}

describe('readRecords on the mixed sample file (events/prompts/mixed.jsonl)', () => {
  it('accepts the three forms, a BOM, CRLF, blank lines and no final newline, and explains every bad line', async () => {
    // Act
    const results = await readAll(readFixture('prompts/mixed.jsonl'));

    // Assess
    const summary = results.map(({ line, result }) =>
      result.ok
        ? [line.lineNumber, 'ok', result.record.family, result.record.recordId]
        : [line.lineNumber, result.error.code, result.error.family ?? '-', result.error.recordId ?? '-'],
    );
    expect(summary).toEqual([
      [1, 'ok', 'bedrock', 'summary-001'],
      [2, 'ok', 'anthropic', 'ticket-42'],
      [3, 'ok', 'plain', 'haiku-about-s3'],
      [5, 'ok', 'plain', 'line-5'],
      [6, 'INVALID_JSON', '-', '-'],
      [7, 'NOT_AN_OBJECT', '-', '-'],
      [8, 'UNKNOWN_FORMAT', '-', '-'],
      [9, 'DUPLICATE_RECORD_ID', 'plain', 'summary-001'],
      [10, 'ok', 'bedrock', 'translate-7'],
      [11, 'ok', 'anthropic', 'legacy-model'],
      [12, 'ok', 'plain', '12'],
    ]);
  });

  it('names the first line of a duplicated id', async () => {
    // Act
    const results = await readAll(readFixture('prompts/mixed.jsonl'));

    // Assess
    const duplicate = results.find(({ line }) => line.lineNumber === 9)?.result;
    expect(duplicate?.ok === false && duplicate.error.message).toMatch(
      /repeats record id "summary-001" first used on line 1/,
    );
  });

  it('locates each line so it can be re-read by byte range and parsed to the same record', async () => {
    // Prepare
    const file = readFixture('prompts/mixed.jsonl');

    // Act
    const results = await readAll(file, 5);

    // Assess
    for (const { line, result } of results) {
      const again = file.subarray(line.byteStart, line.byteEnd);
      expect(Buffer.from(again).equals(Buffer.from(line.bytes ?? []))).toBe(true);
      // A repeated id is found across lines, not in one; anything else a line says, it says again.
      if (result.ok || result.error.code !== 'DUPLICATE_RECORD_ID')
        expect(parseLine(again, line.lineNumber, 25_000_000)).toEqual(result);
    }
  });
});

describe('readRecords', () => {
  describe.each([
    // lines, expected per line
    [
      'a line without an id, then a given id naming that line',
      ['{"prompt": "a"}', '{"id": "line-1", "prompt": "b"}'],
      ['ok', 'INVALID_RECORD_ID'],
    ],
    [
      'a given id naming a later line without an id',
      ['{"id": "line-2", "prompt": "a"}', '{"prompt": "b"}'],
      ['INVALID_RECORD_ID', 'ok'],
    ],
    ['a given id naming its own line', ['{"prompt": "a"}', '{"id": "line-2", "prompt": "b"}'], ['ok', 'ok']],
    [
      'ids that only look alike',
      ['{"id": "line-01", "prompt": "a"}', '{"id": "line-x", "prompt": "b"}', '{"prompt": "c"}'],
      ['ok', 'ok', 'ok'],
    ],
  ])('derived ids never collide with given ones: %s', (_case, lines, expected) => {
    it(`answers ${expected.join(', ')}`, async () => {
      // Act
      const results = await readAll(bytes(`${lines.join('\n')}\n`));

      // Assess
      expect(results.map(({ result }) => (result.ok ? 'ok' : result.error.code))).toEqual(expected);
    });
  });

  it('checks ids with the registry it is given, so a resumed read still finds duplicates', async () => {
    // Prepare
    const registry = new InMemoryRecordIdRegistry();
    registry.claim('a', 1);

    // Act
    const results = [];
    for await (const read of readRecords(chunked(bytes('{"id": "a", "prompt": "x"}\n'), 8), {
      maxLineBytes: 1_000,
      registry,
      startLineNumber: 40,
    })) {
      results.push(read.result);
    }

    // Assess
    expect(results[0]).toMatchObject({ ok: false, error: { code: 'DUPLICATE_RECORD_ID', lineNumber: 40 } });
  });

  it('lets the same line claim its id again (a re-read after a crash is not a duplicate)', () => {
    // Prepare
    const registry = new InMemoryRecordIdRegistry();

    // Act
    const first = registry.claim('a', 3);
    const again = registry.claim('a', 3);
    const other = registry.claim('a', 4);

    // Assess
    expect([first, again, other]).toEqual([undefined, undefined, 3]);
  });
});
