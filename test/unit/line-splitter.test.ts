import { describe, expect, it } from 'vitest';
import { type RawLine, splitLines } from '../../shared/input/line-splitter.ts';
import { bytes, chunked } from '../support/factories.ts';

async function split(data: Uint8Array, options: { chunkSize?: number; maxLineBytes?: number } = {}) {
  const lines: Array<Omit<RawLine, 'bytes'> & { text: string | undefined }> = [];
  for await (const line of splitLines(chunked(data, options.chunkSize ?? 4), {
    maxLineBytes: options.maxLineBytes ?? 1_000,
  })) {
    lines.push({
      lineNumber: line.lineNumber,
      byteStart: line.byteStart,
      byteEnd: line.byteEnd,
      text: line.bytes === undefined ? undefined : new TextDecoder().decode(line.bytes),
    });
  }
  return lines;
}

describe('splitLines', () => {
  describe.each([1, 3, 64])('with %i-byte chunks', (chunkSize) => {
    it('yields each line with its number and byte range', async () => {
      // Act
      const lines = await split(bytes('{"a":1}\n{"b":2}\n'), { chunkSize });

      // Assess
      expect(lines).toEqual([
        { lineNumber: 1, byteStart: 0, byteEnd: 7, text: '{"a":1}' },
        { lineNumber: 2, byteStart: 8, byteEnd: 15, text: '{"b":2}' },
      ]);
    });

    it('skips blank and whitespace-only lines but counts them', async () => {
      // Act
      const lines = await split(bytes('\n  \t\n{"a":1}\r\n\r\n{"b":2}'), { chunkSize });

      // Assess
      expect(lines.map((line) => [line.lineNumber, line.text])).toEqual([
        [3, '{"a":1}'],
        [5, '{"b":2}'],
      ]);
    });

    it('drops CRLF line ends from the content and the range', async () => {
      // Act
      const lines = await split(bytes('{"a":1}\r\n{"b":2}\r\n'), { chunkSize });

      // Assess
      expect(lines).toEqual([
        { lineNumber: 1, byteStart: 0, byteEnd: 7, text: '{"a":1}' },
        { lineNumber: 2, byteStart: 9, byteEnd: 16, text: '{"b":2}' },
      ]);
    });

    it('drops a UTF-8 BOM at the start of the file only', async () => {
      // Act
      const lines = await split(bytes('\uFEFF{"a":1}\n{"b":"\uFEFF"}'), { chunkSize });

      // Assess
      expect(lines[0]).toEqual({ lineNumber: 1, byteStart: 3, byteEnd: 10, text: '{"a":1}' });
      expect(lines[1]?.text).toBe('{"b":"\uFEFF"}');
    });

    it('keeps a last line that has no final newline', async () => {
      // Act
      const lines = await split(bytes('{"a":1}\n{"b":2}'), { chunkSize });

      // Assess
      expect(lines.at(-1)).toEqual({ lineNumber: 2, byteStart: 8, byteEnd: 15, text: '{"b":2}' });
    });

    it('reports a line over the limit without its bytes and goes on with the next', async () => {
      // Act
      const lines = await split(bytes(`{"big":"${'x'.repeat(40)}"}\n{"a":1}\n`), {
        chunkSize,
        maxLineBytes: 20,
      });

      // Assess
      expect(lines).toEqual([
        { lineNumber: 1, byteStart: 0, byteEnd: 50, text: undefined },
        { lineNumber: 2, byteStart: 51, byteEnd: 58, text: '{"a":1}' },
      ]);
    });
  });

  it('counts a line of exactly the limit plus CRLF as within the limit', async () => {
    // Act
    const lines = await split(bytes('1234567890\r\n12345678901\n'), { maxLineBytes: 10 });

    // Assess
    expect(lines.map((line) => line.text)).toEqual(['1234567890', undefined]);
  });

  it('leaves invalid UTF-8 to the parser, byte for byte', async () => {
    // Act
    const collected = [];
    for await (const raw of splitLines(chunked(new Uint8Array([0x7b, 0xff, 0x7d, 0x0a]), 2), {
      maxLineBytes: 10,
    })) {
      collected.push(raw);
    }

    // Assess
    expect([...(collected[0]?.bytes ?? [])]).toEqual([0x7b, 0xff, 0x7d]);
  });

  it('resumes mid-file from a byte offset and line number', async () => {
    // Prepare
    const file = bytes('{"a":1}\n{"b":2}\n{"c":3}\n');

    // Act
    const lines = [];
    for await (const line of splitLines(chunked(file.subarray(8), 5), {
      maxLineBytes: 100,
      startByte: 8,
      startLineNumber: 2,
    })) {
      lines.push([line.lineNumber, line.byteStart, line.byteEnd]);
    }

    // Assess
    expect(lines).toEqual([
      [2, 8, 15],
      [3, 16, 23],
    ]);
  });
});
