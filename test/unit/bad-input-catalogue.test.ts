import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { continueJob, startJob } from '../../shared/pipeline/enqueue.ts';
import { BODIES_BEDROCK_REFUSES } from '../support/bad-inputs.ts';
import { BUCKET, objectCreated, pipelineHarness } from '../support/pipeline-harness.ts';

/**
 * Every kind of bad input a user can hand the pipeline, and what they get back: a line-level problem is an
 * error record with its code and a message that says how to fix it, while the good lines of the same file
 * succeed; a file-level problem is one "Batch Job Failed" event with the reason, and no call at all.
 */
const good = (id: string) => JSON.stringify({ id, prompt: `Prompt ${id}` });
const bedrockLine = (changes: Record<string, unknown>) =>
  JSON.stringify({
    recordId: 'bad',
    modelInput: { max_tokens: 100, messages: [{ role: 'user', content: 'Hi' }], ...changes },
  });

const LINE_PROBLEMS: ReadonlyArray<readonly [string, string | Uint8Array, string, RegExp]> = [
  [
    'bytes that are not UTF-8',
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    'INVALID_UTF8',
    /is not valid UTF-8/,
  ],
  ['a line that is not JSON', '{"id": "x", "prompt": ', 'INVALID_JSON', /is not valid JSON/],
  ['a JSON array', '["a", "b"]', 'NOT_AN_OBJECT', /is an array, not a JSON object/],
  ['an object in no known form', '{"text": "hi"}', 'UNKNOWN_FORMAT', /is in none of the accepted forms/],
  ['a mix of two forms', '{"prompt": "hi", "modelInput": {}}', 'AMBIGUOUS_FORMAT', /mixes the .* forms/],
  [
    'both prompt and messages',
    '{"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}',
    'INVALID_RECORD',
    /either "prompt"/,
  ],
  ['an empty prompt', '{"prompt": ""}', 'INVALID_RECORD', /must not be empty/],
  [
    '"maxTokens" in a plain line',
    '{"prompt": "hi", "maxTokens": 9}',
    'INVALID_RECORD',
    /"maxTokens" is not read: write "max_tokens"/,
  ],
  ['a plain temperature of 2', '{"prompt": "hi", "temperature": 2}', 'INVALID_RECORD', /temperature/],
  ['an empty id', '{"id": "", "prompt": "hi"}', 'INVALID_RECORD_ID', /must not be empty/],
  [
    'an id that names another line',
    '{"id": "line-9", "prompt": "hi"}',
    'INVALID_RECORD_ID',
    /the one line 9 gets when it has none/,
  ],
  ['an id used before', good('a'), 'DUPLICATE_RECORD_ID', /repeats record id "a" first used on line 1/],
  [
    'a max_tokens over the model maximum',
    bedrockLine({ max_tokens: 200_000 }),
    'MAX_TOKENS_TOO_LARGE',
    /more than Claude Opus 4\.6 can produce/,
  ],
  [
    'an unknown beta',
    bedrockLine({ anthropic_beta: ['files-api-2025-04-14'] }),
    'UNKNOWN_BETA',
    /does not accept the beta "files-api-2025-04-14"/,
  ],
  ['an unknown model', '{"prompt": "hi", "model": "gpt-4"}', 'UNKNOWN_MODEL', /Unknown model "gpt-4"/],
  [
    'five cache_control breakpoints',
    bedrockLine({
      system: Array.from({ length: 5 }, (_, index) => ({
        type: 'text',
        text: `rule ${index}`,
        cache_control: { type: 'ephemeral' },
      })),
    }),
    'TOO_MANY_CACHE_BREAKPOINTS',
    /has 5 cache_control breakpoints; Bedrock takes at most 4/,
  ],
  [
    'a 1-hour breakpoint after a 5-minute one',
    bedrockLine({
      system: [
        { type: 'text', text: 'policy', cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'case', cache_control: { type: 'ephemeral', ttl: '1h' } },
      ],
    }),
    'CACHE_TTL_ORDER',
    /ttl "1h" comes after one of 5 minutes/,
  ],
  [
    'a cache TTL the model does not take',
    bedrockLine({
      system: [{ type: 'text', text: 'policy', cache_control: { type: 'ephemeral', ttl: '2h' } }],
    }),
    'UNSUPPORTED_CACHE_TTL',
    /ttl "2h" is not one the model takes/,
  ],
  [
    'a document over the 1M window',
    JSON.stringify({ prompt: 'word '.repeat(2_600_000) }),
    'CONTEXT_TOO_LONG',
    /exceeds even the 1,000,000-token window/,
  ],
  ...BODIES_BEDROCK_REFUSES.map(
    ([name, changes, message]) =>
      [`a body with ${name}`, bedrockLine(changes), 'INVALID_REQUEST', message] as const,
  ),
];

describe.each(LINE_PROBLEMS)('a line with %s', (_case, line, code, message) => {
  it(`is an error record ${code} saying how to fix it, and the good lines of the file succeed`, async () => {
    // Prepare
    const pipeline = pipelineHarness();
    const body = Buffer.concat([
      Buffer.from(`${good('a')}\n`),
      typeof line === 'string' ? Buffer.from(line) : line,
      Buffer.from(`\n${good('c')}\n`),
    ]);

    // Act
    await pipeline.run('inputs/catalogue.jsonl', body);

    // Assess
    const output = pipeline.outputLines('inputs/catalogue.jsonl').map(errorOf);
    expect(output.map((result) => result?.code)).toEqual([undefined, code, undefined]);
    expect(output[1]?.message).toMatch(message);
    expect(pipeline.model.calls).toHaveLength(2);
  });
});

describe('two lines whose ids differ only in Unicode normalisation', () => {
  it('are one id: the later line is DUPLICATE_RECORD_ID, saying ids are compared in NFC form', async () => {
    // Prepare: "café" precomposed, then with a combining accent.
    const pipeline = pipelineHarness();
    const body = [good('caf\u00e9'), good('cafe\u0301'), good('c')].join('\n');

    // Act
    await pipeline.run('inputs/twins.jsonl', body);

    // Assess
    const output = pipeline.outputLines('inputs/twins.jsonl').map(errorOf);
    expect(output.map((result) => result?.code)).toEqual([undefined, 'DUPLICATE_RECORD_ID', undefined]);
    expect(output[1]?.message).toMatch(/first used on line 1\..*compared in Unicode NFC form/);
  });
});

/** A result line's error in whichever form the line came (plain: code and message; Bedrock: errorType and errorMessage). */
function errorOf(line: Record<string, unknown>): { code: unknown; message: unknown } | undefined {
  const error = line.error as Record<string, unknown> | undefined;
  if (error === undefined) return undefined;
  return { code: error.code ?? error.errorType, message: error.message ?? error.errorMessage };
}

/** Gzip data with a flipped bit in its checksum. */
const corrupted = (gzip: Uint8Array) => {
  const copy = Buffer.from(gzip);
  copy[copy.length - 6] = (copy[copy.length - 6] ?? 0) ^ 0xff;
  return copy;
};
const utf16 = (text: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
const lines = `${good('a')}\n${good('b')}\n`;

const FILE_PROBLEMS: ReadonlyArray<
  readonly [string, string, string | Uint8Array, Record<string, string>, RegExp]
> = [
  [
    'a .csv file',
    'inputs/table.csv',
    'id,prompt\n1,hi\n',
    {},
    /table\.csv is not a \.jsonl or \.jsonl\.gz file/,
  ],
  [
    'a .json file',
    'inputs/list.json',
    '[{"prompt": "hi"}]',
    {},
    /list\.json is not a \.jsonl or \.jsonl\.gz file.*jq -c/,
  ],
  [
    'a .gz file that is not .jsonl.gz',
    'inputs/packed.csv.gz',
    gzipSync(lines),
    {},
    /name a compressed JSON Lines file \.jsonl\.gz/,
  ],
  [
    'a .jsonl.gz file that is not gzip',
    'inputs/plain.jsonl.gz',
    lines,
    {},
    /is named \.jsonl\.gz but is not gzip data/,
  ],
  [
    'a .jsonl.gz file cut within its gzip header',
    'inputs/cut.jsonl.gz',
    gzipSync(lines).subarray(0, 10),
    {},
    /cut\.jsonl\.gz is not valid gzip data \(unexpected end of file\)/,
  ],
  [
    'a .jsonl.gz file whose data does not match its checksum',
    'inputs/corrupt.jsonl.gz',
    corrupted(gzipSync(lines)),
    {},
    /corrupt\.jsonl\.gz is not valid gzip data \(incorrect data check\)/,
  ],
  [
    'UTF-16 text compressed',
    'inputs/wide.jsonl.gz',
    gzipSync(utf16(lines)),
    {},
    /is UTF-16 text; JSON Lines are UTF-8/,
  ],
  ['UTF-16 text', 'inputs/wide.jsonl', utf16(lines), {}, /is UTF-16 text; JSON Lines are UTF-8/],
  [
    'only blank lines',
    'inputs/blank.jsonl',
    '\n  \n\t\n\n',
    {},
    /blank\.jsonl has no records: it is empty or holds only blank lines/,
  ],
  ['an empty file', 'inputs/nothing.jsonl', '', {}, /nothing\.jsonl has no records/],
  [
    'an empty file compressed',
    'inputs/nothing.jsonl.gz',
    gzipSync(''),
    {},
    /nothing\.jsonl\.gz has no records/,
  ],
  [
    'UTF-32 text',
    'inputs/wider.jsonl',
    Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), Buffer.from(lines)]),
    {},
    /is UTF-32 text/,
  ],
  ['UTF-16 without a byte-order mark', 'inputs/nobom.jsonl', Buffer.from(lines, 'utf16le'), {}, /NUL bytes/],
  [
    'gzip data named .jsonl',
    'inputs/hidden.jsonl',
    gzipSync(lines),
    {},
    /is gzip-compressed but named \.jsonl: name it \.jsonl\.gz/,
  ],
  [
    'a ZIP archive named .jsonl',
    'inputs/zip.jsonl',
    Buffer.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3]),
    {},
    /ZIP archive/,
  ],
  [
    'one JSON array',
    'inputs/array.jsonl',
    '[\n  {"prompt": "hi"},\n  {"prompt": "yo"}\n]\n',
    {},
    /is a JSON array, not JSON Lines/,
  ],
  ['CSV named .jsonl', 'inputs/csv.jsonl', 'id,prompt\n1,hi\n2,yo\n', {}, /does not look like JSON Lines/],
  ['a bad max-tokens option', 'inputs/opt.jsonl', lines, { 'max-tokens': 'lots' }, /file option max-tokens/],
  [
    'an unknown file option',
    'inputs/opt2.jsonl',
    lines,
    { temperature: '1' },
    /unknown file option temperature/,
  ],
  ['an unknown model option', 'inputs/opt3.jsonl', lines, { model: 'gpt-4' }, /Unknown model "gpt-4"/],
  [
    'a max-error-rate over 100%',
    'inputs/opt4.jsonl',
    lines,
    { 'max-error-rate': '150%' },
    /file option max-error-rate must be a fraction from 0 to 1 or a percentage/,
  ],
  [
    'a max-error-rate that is not a number',
    'inputs/opt5.jsonl',
    lines,
    { 'max-error-rate': 'some' },
    /file option max-error-rate must be a fraction/,
  ],
];

describe.each(FILE_PROBLEMS)('a file that is %s', (_case, key, body, metadata, reason) => {
  it('fails as a whole with one "Batch Job Failed" event saying why, and calls nothing', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    const { outcome } = await pipeline.run(key, body, metadata);

    // Assess
    expect(outcome).toMatchObject({ kind: 'failed', reason: expect.stringMatching(reason) });
    expect(pipeline.events.outcomes).toEqual([
      {
        detailType: 'Batch Job Failed',
        detail: expect.objectContaining({ reason: expect.stringMatching(reason) }),
      },
    ]);
    expect(pipeline.model.calls).toHaveLength(0);
    expect(pipeline.queue.sent).toHaveLength(0);
  });
});

describe('a file mostly of lines that are not records', () => {
  const junk = (lines: number) => Array.from({ length: lines }, () => '{}');
  const fileOf = (...parts: ReadonlyArray<string | readonly string[]>) => parts.flat().join('\n');

  it('stops being read once over half its records are invalid, fails the job saying why, and cancels what it sent', async () => {
    // Prepare: two good lines around 3,000 lines of `{}`.
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 500 } });

    // Act
    const { outcome, verdicts } = await pipeline.run(
      'inputs/junk.jsonl',
      fileOf(good('first'), junk(3_000), good('last')),
    );

    // Assess: read to the first check from the 100th record on (chunks of 20, 40, 80 lines), no further.
    expect(outcome).toMatchObject({ kind: 'failed' });
    const reason = outcome.kind === 'failed' ? outcome.reason : '';
    expect(reason).toMatch(
      /^Stopped reading at line 140: 139 of the 140 records read are invalid \(99\.3%\), above the file's maximum error rate of 50%\. Among them: UNKNOWN_FORMAT x 139 \(first at line 2\)\. Run `bedrock-batch plan <file>`/,
    );
    expect(pipeline.events.outcomes).toEqual([
      { detailType: 'Batch Job Failed', detail: expect.objectContaining({ reason }) },
    ]);
    const [job] = pipeline.ledger.jobs.values();
    expect(job).toMatchObject({ status: 'failed', recordsRead: 140, invalidLines: 139, doneRecords: 140 });
    expect(verdicts).toEqual([expect.objectContaining({ kind: 'done', status: 'canceled' })]);
    expect(pipeline.model.calls).toHaveLength(0);
  });

  it('keeps its count across invocations: a file read 20 lines at a time stops at its 100th', async () => {
    // Prepare: every invocation stops after one chunk, its first (20 lines).
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 500 } });
    pipeline.store.putObject(BUCKET, 'inputs/junk.jsonl', fileOf(good('first'), junk(3_000)));

    // Act
    let outcome = await startJob(
      objectCreated('inputs/junk.jsonl'),
      pipeline.ports,
      pipeline.enqueueSettings,
      () => true,
    );
    const invocations = [outcome.kind];
    while (outcome.kind === 'continued') {
      outcome = await continueJob(outcome.jobId, pipeline.ports, pipeline.enqueueSettings, () => true);
      invocations.push(outcome.kind);
    }

    // Assess
    expect(invocations).toEqual(['continued', 'continued', 'continued', 'continued', 'failed']);
    expect(outcome).toMatchObject({
      reason: expect.stringMatching(
        /^Stopped reading at line 100: 99 of the 100 .* Among them: UNKNOWN_FORMAT x 20 \(first at line 81\)/,
      ),
    });
  });

  it.each([
    ['a file option of 1 never stops', { 'max-error-rate': '1' }, 'completed'],
    ['a file option of 100% never stops', { 'max-error-rate': '100%' }, 'completed'],
    ['the default stops', {}, 'failed'],
  ])('%s', async (_case, metadata, status) => {
    // Prepare
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 50 } });

    // Act
    await pipeline.run('inputs/junk.jsonl', fileOf(good('first'), junk(200), good('last')), metadata);

    // Assess
    expect([...pipeline.ledger.jobs.values()][0]?.status).toBe(status);
  });

  it.each([
    ['40% of its lines invalid, under the default', 4, {}, 'completed'],
    ['60% of its lines invalid, over the default', 6, {}, 'failed'],
    ['20% of its lines invalid, over a file option of 10%', 2, { 'max-error-rate': '10%' }, 'failed'],
    ['20% of its lines invalid, under a file option of 0.25', 2, { 'max-error-rate': '0.25' }, 'completed'],
  ])('with %s ends %s', async (_case, badInTen, metadata, status) => {
    // Prepare: 300 lines, the first `badInTen` of every ten invalid.
    const lines = Array.from({ length: 300 }, (_, index) =>
      index % 10 < badInTen ? '{"text": "no prompt"}' : good(`r${index}`),
    );
    const pipeline = pipelineHarness({ enqueue: { chunkLines: 50 } });

    // Act
    await pipeline.run('inputs/mixed.jsonl', lines.join('\n'), metadata);

    // Assess
    const [job] = pipeline.ledger.jobs.values();
    expect(job?.status).toBe(status);
    if (status === 'completed') expect(job?.invalidLines).toBe(30 * badInTen);
  });

  it('is judged from the 100th record on: a small file of errors runs to its end', async () => {
    // Prepare
    const pipeline = pipelineHarness();

    // Act
    await pipeline.run('inputs/small.jsonl', fileOf(junk(98), good('last')));

    // Assess
    expect(pipeline.outputLines('inputs/small.jsonl')).toHaveLength(99);
    expect(pipeline.manifest('inputs/small.jsonl')).toMatchObject({ status: 'completed' });
  });
});
