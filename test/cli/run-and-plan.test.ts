import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBedrockStandIn } from '../../local/bedrock/stand-in.ts';
import { LOCAL_CREDENTIALS } from '../support/bedrock-clients.ts';
import { runCli, runInProcess } from '../support/cli.ts';
import { fixturePath, haikuAtFlex, newCatalogModel } from '../support/factories.ts';

let work = '';
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-cli-'));
  await writeFile(path.join(work, 'empty.jsonl'), '');
  await mkdir(path.join(work, 'a-directory'));
  await writeFile(path.join(work, 'table.csv'), 'id,prompt\n1,hi\n');
  await writeFile(
    path.join(work, 'wide.jsonl'),
    Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"prompt": "hi"}\n', 'utf16le')]),
  );
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('bedrock-batch run', () => {
  it('runs a file through the local pipeline, prints progress lines and a summary, and writes the output', async () => {
    // Act: in the batch lane, which a file of 20 records is too small for.
    const result = await runCli([
      'run',
      fixturePath('prompts/sample.jsonl'),
      '--out',
      work,
      '--speed',
      '0',
      '--lane',
      'batch',
    ]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d+\/(\d+|\d+\+) records · \d+ succeeded/m);
    expect(result.stdout).toMatch(/Done in [\d.]+ s: 20 records, 19 succeeded, 1 failed/);
    expect(result.stdout).toContain(
      'lane: --lane batch ran on demand: a batch job needs at least 100 records and the file has 20\n',
    );
    expect(result.stdout).not.toContain(String.fromCharCode(27));
    const output = (await readFile(path.join(work, 'sample.jsonl.out'), 'utf8')).trimEnd().split('\n');
    expect(output).toHaveLength(20);
    expect(
      JSON.parse(await readFile(path.join(work, 'sample.jsonl.manifest.json.out'), 'utf8')),
    ).toMatchObject({ totalRecordCount: 20 });
  }, 120_000);

  it('prints only the manifest as JSON on stdout with --json, and honours the model options', async () => {
    // Act
    const result = await runCli([
      'run',
      fixturePath('prompts/mixed.jsonl'),
      '--out',
      work,
      '--speed',
      '0',
      '--json',
      '--model',
      'sonnet-4.5',
      '--endpoint',
      'regional',
      '--max-tokens',
      '99',
    ]);

    // Assess
    expect(result.code).toBe(0);
    const manifest = JSON.parse(result.stdout);
    expect(manifest).toMatchObject({
      totalRecordCount: 11,
      successRecordCount: 6,
      model: 'sonnet-4.5',
      endpoint: 'regional',
    });
    expect(result.stderr).toContain('Batch Job Completed');
    expect(result.stderr).not.toMatch(/No application metrics|\n\s+at /);
  }, 120_000);

  it.each([
    ['a missing file', ['run', 'no-such.jsonl'], /No such file: no-such\.jsonl/],
    ['an empty file', ['run', 'EMPTY'], /is empty: there is nothing to run/],
    ['a directory', ['run', 'DIRECTORY'], /is a directory\. Give a \.jsonl file inside it/],
    [
      'no file at all',
      ['run'],
      /No input file given\. Name a \.jsonl file, for example: bedrock-batch run prompts\.jsonl/,
    ],
    [
      'a plan of no file',
      ['plan'],
      /No input file given\. Name a \.jsonl file, for example: bedrock-batch plan prompts\.jsonl/,
    ],
    [
      'an unknown model',
      ['run', 'SAMPLE', '--model', 'gpt-4'],
      /--model is not usable: Unknown model "gpt-4"|Unknown model "gpt-4"/,
    ],
    [
      'a model the region lacks',
      ['run', 'SAMPLE', '--model', 'haiku-4.5', '--region', 'ap-northeast-1'],
      /Claude Haiku 4\.5 is not available in JP \(ap-northeast-1\)\. Call it from a region in US/,
    ],
    [
      'a bad endpoint',
      ['run', 'SAMPLE', '--endpoint', 'cross'],
      /--endpoint cross is not an endpoint\. Use one of global, regional, in-region/,
    ],
    [
      'regions in two geographies for a file kept to one',
      ['run', 'SAMPLE', '--regions', 'us-west-2,eu-west-1', '--endpoints', 'regional'],
      /--endpoints and regions: eu-west-1 is in EU, outside US \(the home region us-west-2\)/,
    ],
    [
      'an unknown option',
      ['run', 'SAMPLE', '--fast'],
      /Unknown option --fast for "run"\. Run "bedrock-batch run --help"/,
    ],
    [
      'a second file',
      ['run', 'SAMPLE', 'SAMPLE'],
      /Unexpected argument ".*sample\.jsonl"\. .*run one file at a time/,
    ],
    [
      'a quota of 0',
      ['run', 'SAMPLE', '--quota-tpm', '0'],
      /--quota-tpm must be a whole number of at least 1, not "0"/,
    ],
    [
      'a negative quota',
      ['run', 'SAMPLE', '--quota-tpm', '-5'],
      /--quota-tpm must be a whole number of at least 1, not "-5"/,
    ],
    ['an empty speed', ['run', 'SAMPLE', '--speed', ''], /--speed must be a number of 0 or more, not ""/],
    [
      'a negative speed',
      ['run', 'SAMPLE', '--speed', '-1'],
      /--speed must be a number of 0 or more, not "-1"/,
    ],
    [
      'a hexadecimal max-tokens',
      ['run', 'SAMPLE', '--max-tokens', '0x10'],
      /--max-tokens must be a whole number of at least 1, not "0x10"/,
    ],
    [
      'an unknown lane',
      ['run', 'SAMPLE', '--lane', 'cheap'],
      /--lane cheap is not a lane\. Use one of on-demand, batch, auto/,
    ],
    [
      'a caching choice that is neither auto nor off',
      ['run', 'SAMPLE', '--cache', 'on'],
      /--cache on is not a caching choice\. Use auto \(cache the prefix the file's records share\) or off/,
    ],
    [
      'a deadline that is not a duration',
      ['run', 'SAMPLE', '--deadline', 'tomorrow'],
      /--deadline tomorrow is not a duration\. Use one such as 30m, 6h or 2d/,
    ],
    [
      'an unknown region',
      ['run', 'SAMPLE', '--region', 'mars-north-1'],
      /--region mars-north-1 does not serve Claude on Bedrock\. Use one of .*us-west-2/,
    ],
    [
      'a geographic id from another geography',
      ['run', 'SAMPLE', '--model', 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0', '--region', 'us-east-1'],
      /The "eu\." inference profile is called from .* regions, not from us-east-1/,
    ],
    [
      'an --out that is a file',
      ['run', 'SAMPLE', '--out', 'SAMPLE'],
      /--out .*sample\.jsonl is a file\. Name a directory/,
    ],
    [
      'a spending cap that is no amount',
      ['run', 'SAMPLE', '--max-cost', 'lots'],
      /--max-cost must be an amount of USD above 0/,
    ],
    ['jobs with a limit over 100', ['jobs', '--limit', '101'], /--limit must be at most 100, not 101\./],
    ['an unknown command', ['launch'], /Unknown command "launch"\. Run "bedrock-batch help"/],
    [
      'local up with a quota that is not a number',
      ['local', 'up', '--quota-tpm', 'abc'],
      /--quota-tpm must be a whole number of at least 1, not "abc"/,
    ],
    [
      'local up with a daily spending cap of nothing',
      ['local', 'up', '--max-daily-cost', '0'],
      /--max-daily-cost must be an amount of USD above 0, such as 25 or 0\.5, not "0"/,
    ],
    [
      'local up in an unknown region',
      ['local', 'up', '--region', 'mars-north-1'],
      /--region mars-north-1 does not serve Claude/,
    ],
    [
      'a .csv file',
      ['run', 'WORK/table.csv'],
      /table\.csv is not a \.jsonl or \.jsonl\.gz file; the pipeline reads JSON Lines/,
    ],
    [
      'a UTF-16 file',
      ['run', 'WORK/wide.jsonl'],
      /wide\.jsonl: The file is UTF-16 text; JSON Lines are UTF-8/,
    ],
  ])('refuses %s with a clear message, exit code 2 and no stack trace', async (_case, args, message) => {
    // Prepare
    const resolved = args.map((arg) =>
      arg === 'EMPTY'
        ? path.join(work, 'empty.jsonl')
        : arg === 'DIRECTORY'
          ? path.join(work, 'a-directory')
          : arg === 'SAMPLE'
            ? fixturePath('prompts/sample.jsonl')
            : arg.replace(/^WORK\//, `${work}/`),
    );

    // Act
    const result = await runInProcess(resolved);

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('as a command, says which option or command a mistyped one was probably meant to be, and has help', async () => {
    // Act
    const option = await runCli(['run', fixturePath('prompts/sample.jsonl'), '--modle', 'haiku-4.5']);
    const command = await runCli(['stauts', 'job-1']);
    const help = await runCli(['plan', '--help']);

    // Assess
    expect(option).toMatchObject({ code: 2, stdout: '' });
    expect(option.stderr).toBe(
      'Error: Unknown option --modle for "run". Did you mean --model? Run "bedrock-batch run --help" for its options.\n',
    );
    expect(command.stderr).toMatch(/^Error: Unknown command "stauts"\. Did you mean "status"\?/);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: bedrock-batch plan <file\.jsonl> \[options\]\n/);
    expect(help.stdout).toMatch(/^ {2}--quota-tpm <n> +tokens a minute to spend/m);
  });

  it('runs a .jsonl.gz file as it runs the file uncompressed', async () => {
    // Prepare
    const file = path.join(work, 'sample.jsonl.gz');
    await writeFile(file, gzipSync(await readFile(fixturePath('prompts/sample.jsonl'))));

    // Act
    const result = await runCli(['run', file, '--out', work, '--speed', '0']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Done in [\d.]+ s: 20 records, 19 succeeded, 1 failed/);
    expect(
      (await readFile(path.join(work, 'sample.jsonl.gz.out'), 'utf8')).trimEnd().split('\n'),
    ).toHaveLength(20);
  }, 120_000);

  it('stops at its spending cap: the job ends canceled with the reason, and the records not run are canceled', async () => {
    // Prepare: 200 records, a tenth of a cent allowed: the cap is passed by the first records answered.
    const file = path.join(work, 'capped.jsonl');
    await writeFile(
      file,
      `${Array.from({ length: 200 }, (_, index) => JSON.stringify({ id: `r${index}`, prompt: `Prompt ${index}` })).join('\n')}\n`,
    );

    // Act
    const result = await runCli([
      'run',
      file,
      '--out',
      work,
      '--speed',
      '0',
      '--max-cost',
      '0.001',
      '--json',
    ]);

    // Assess
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /Job failed: The job ended canceled: its spending cap of \$0\.001 was reached \(\$[\d.]+ spent\)/,
    );
    const manifest = JSON.parse(result.stdout);
    expect(manifest).toMatchObject({
      status: 'canceled',
      reason: expect.stringMatching(/^its spending cap of \$0\.001/),
    });
    expect(manifest.canceledRecordCount).toBeGreaterThan(0);
  }, 120_000);

  it('caches the prefix a file shares and says what it saved, unless --cache off', async () => {
    // Prepare: 12 tickets under one 6,000-token policy.
    const policy = `Classify under the refund policy. ${'Refunds within 30 days of purchase. '.repeat(660)}`;
    const file = path.join(work, 'tickets.jsonl');
    const lines = Array.from({ length: 12 }, (_, index) =>
      JSON.stringify({ id: `t${index}`, system: policy, prompt: `Ticket ${index}?`, max_tokens: 16 }),
    );
    await writeFile(file, lines.join('\n'));

    // Act
    const cached = await runCli(['run', file, '--out', work, '--speed', '0']);
    const cachedManifest = JSON.parse(
      await readFile(path.join(work, 'tickets.jsonl.manifest.json.out'), 'utf8'),
    );
    const uncached = await runCli(['run', file, '--out', work, '--speed', '0', '--cache', 'off', '--json']);

    // Assess: one write, eleven reads; none with caching off.
    expect(cached.stdout).toMatch(
      /prompt cache: 91\.7% of 12 records read it \([\d,]+ tokens read, [\d,]+ written\), saving \$[\d.]+ against no cache/,
    );
    expect(cachedManifest.cache).toMatchObject({ hitRecords: 11, missRecords: 1 });
    expect(cachedManifest.cache.savingUsd).toBeGreaterThan(0);
    expect(JSON.parse(uncached.stdout)).toMatchObject({
      cacheReadInputTokenCount: 0,
      cacheCreationInputTokenCount: 0,
      cache: { hitRate: null, savingUsd: 0 },
    });
  }, 120_000);

  it('answers lines too large for Bedrock with error records, as the deployed pipeline does', async () => {
    // Prepare: a 26 MB line, and a 12 MB document (over the 1M window) in the plain and Bedrock forms.
    const document = 'word '.repeat(2_500_000);
    const file = path.join(work, 'large.jsonl');
    await writeFile(
      file,
      [
        JSON.stringify({ id: 'huge', prompt: 'x'.repeat(26 * 1024 * 1024) }),
        JSON.stringify({ id: 'long-plain', prompt: document }),
        JSON.stringify({
          recordId: 'long-bedrock',
          modelInput: { max_tokens: 100, messages: [{ role: 'user', content: document }] },
        }),
        JSON.stringify({ id: 'small', prompt: 'Hi' }),
      ].join('\n'),
    );

    // Act
    const result = await runCli(['run', file, '--out', work, '--speed', '0']);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const output = (await readFile(path.join(work, 'large.jsonl.out'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { error?: { code?: string; errorType?: string }; status?: string });
    expect(output.map((line) => line.error?.code ?? line.error?.errorType ?? line.status)).toEqual([
      'LINE_TOO_LARGE',
      'CONTEXT_TOO_LONG',
      'CONTEXT_TOO_LONG',
      'succeeded',
    ]);
  }, 120_000);

  it('says plainly that --bedrock aws needs AWS credentials when there are none', async () => {
    // Act
    const result = await runCli(
      ['run', fixturePath('prompts/sample.jsonl'), '--bedrock', 'aws'],
      noCredentials(),
    );

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /No AWS credentials found for --bedrock aws\. Configure the default credential chain/,
    );
  });
});

describe('bedrock-batch quotas', () => {
  it('says plainly that reading Service Quotas needs AWS credentials, and how to read the local cloud instead', async () => {
    // Act
    const result = await runCli(['quotas', '--region', 'us-west-2'], noCredentials());

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /No AWS credentials found for reading Service Quotas\. .* or read the local cloud's with --resources/,
    );
    expect(result.stdout).toBe('');
  });
});

/** An environment in which the default credential chain finds nothing. */
function noCredentials(): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: '',
    AWS_SECRET_ACCESS_KEY: '',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_CONFIG_FILE: path.join(work, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
    AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
    AWS_WEB_IDENTITY_TOKEN_FILE: '',
  };
}

describe('bedrock-batch run --bedrock aws', () => {
  it('spends the share of the quota Service Quotas applies to the account when no --quota-tpm is given', async () => {
    // Prepare: "AWS" is a stand-in whose account has 250,000 tokens a minute for every model and profile.
    const aws = await startBedrockStandIn({
      region: 'us-west-2',
      speed: 0,
      quota: { tokensPerMinute: 250_000 },
    });

    // Act
    const result = await runCli(
      ['run', fixturePath('prompts/sample.jsonl'), '--out', work, '--bedrock', 'aws', '--quota-share', '0.8'],
      {
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME: aws.endpoint,
        AWS_ENDPOINT_URL_SERVICE_QUOTAS: aws.endpoint,
      },
    ).finally(() => aws.close());

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /Quota: 250000 tokens a minute for us-west-2#global\.anthropic\.\S+ \(Service Quotas: "Global cross-region model inference tokens per minute for Anthropic Claude [^"]+"\); spending 200000\./,
    );
    expect(result.stdout).toMatch(/Done in [\d.]+ s: 20 records/);
  }, 120_000);
});

/** `plan` of the sample for Haiku 4.5 over two regions' global and geographic pools. */
const PLAN_OVER_FOUR_POOLS = [
  'plan',
  fixturePath('prompts/sample.jsonl'),
  '--model',
  'haiku-4.5',
  '--regions',
  'us-west-2,us-east-1',
  '--endpoints',
  'global,regional',
];

describe('bedrock-batch plan', () => {
  it('reports errors by line, token estimates, 1M-context records, the cost range and the time at the quota, without calling anything', async () => {
    // Prepare
    const file = path.join(work, 'plan.jsonl');
    await writeFile(
      file,
      `${await readFile(fixturePath('prompts/mixed.jsonl'), 'utf8')}\n${await readFile(fixturePath('prompts/long-document.jsonl'), 'utf8')}`,
    );

    // Act
    const result = await runCli(['plan', file, '--json', '--quota-tpm', '30000']);

    // Assess
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan).toMatchObject({ records: 12, valid: 7, longContextRecords: [13] });
    expect(plan.errors.map((error: { line: number; code: string }) => [error.line, error.code])).toEqual([
      [6, 'INVALID_JSON'],
      [7, 'NOT_AN_OBJECT'],
      [8, 'UNKNOWN_FORMAT'],
      [9, 'DUPLICATE_RECORD_ID'],
      [11, 'UNKNOWN_MODEL'],
    ]);
    expect(plan.estimatedCostUsd.regional.high).toBeGreaterThan(plan.estimatedCostUsd.global.high);
    expect(plan.estimatedCostUsd.global.low).toBeLessThan(plan.estimatedCostUsd.global.high);
    // The quota's time: the first minute's tokens at once, then 30,000 a minute; at most every max_tokens
    // used, each output token counting 5.
    const high = plan.inputTokens.high + plan.maxOutputTokens * 5;
    expect(plan.atQuota).toMatchObject({
      tokensPerMinute: 30_000,
      pools: 1,
      quotaTokens: { low: plan.inputTokens.low, high },
      seconds: {
        low: Math.round((Math.max(0, plan.inputTokens.low - 30_000) / 30_000) * 60),
        high: Math.round(((high - 30_000) / 30_000) * 60),
      },
    });
    expect(plan.atQuota.seconds.high).toBeGreaterThan(0);
  });

  it('names the quota pools a file may use and the time at all their quotas together', async () => {
    // Act
    const result = await runCli([...PLAN_OVER_FOUR_POOLS, '--quota-tpm', '30000', '--json']);

    // Assess
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout);
    const haiku = 'anthropic.claude-haiku-4-5-20251001-v1:0';
    expect(plan.pools).toEqual([
      `us-west-2#global.${haiku}`,
      `us-west-2#us.${haiku}`,
      `us-east-1#global.${haiku}`,
      `us-east-1#us.${haiku}`,
    ]);
    const { high } = plan.atQuota.quotaTokens;
    expect(plan.atQuota).toMatchObject({
      tokensPerMinute: 120_000,
      pools: 4,
      seconds: { high: Math.round((Math.max(0, high - 120_000) / 120_000) * 60) },
    });
    expect(plan.atQuota.perPool[0]).toMatchObject({
      pool: `us-west-2#global.${haiku}`,
      tokensPerMinute: 30_000,
      seconds: { high: Math.round((Math.max(0, high - 30_000) / 30_000) * 60) },
    });
  });

  it("with --bedrock aws, times the file at each pool's quota from Service Quotas and says why a pool is left out", async () => {
    // Prepare: "AWS" is a stand-in whose account has 250,000 tokens a minute, and none through us-east-1's
    // geographic profile for Haiku 4.5.
    const haiku = 'anthropic.claude-haiku-4-5-20251001-v1:0';
    const aws = await startBedrockStandIn({
      region: 'us-west-2',
      regions: ['us-east-1'],
      speed: 0,
      quota: { tokensPerMinute: 250_000 },
      quotaByModel: { [`us-east-1#us.${haiku}`]: { tokensPerMinute: 0 } },
    });

    // Act
    const result = await runCli([...PLAN_OVER_FOUR_POOLS, '--bedrock', 'aws', '--json'], {
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SERVICE_QUOTAS: aws.endpoint,
    }).finally(() => aws.close());

    // Assess
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout);
    expect(plan.pools).toEqual([
      `us-west-2#global.${haiku}`,
      `us-west-2#us.${haiku}`,
      `us-east-1#global.${haiku}`,
    ]);
    expect(plan.poolsLeftOut).toEqual([
      { pool: `us-east-1#us.${haiku}`, reason: expect.stringMatching(/"Cross-region .+" is 0 in us-east-1/) },
    ]);
    expect(plan.atQuota).toMatchObject({ tokensPerMinute: 750_000, pools: 3 });
  }, 60_000);

  it('shows the prefix the records share, how many start with it and what caching it saves', async () => {
    // Prepare: 30 tickets under one 6,000-token policy, and one record without it.
    const policy = `Classify under the refund policy. ${'Refunds within 30 days of purchase. '.repeat(660)}`;
    const file = path.join(work, 'shared.jsonl');
    const lines = Array.from({ length: 30 }, (_, index) =>
      JSON.stringify({ id: `t${index}`, system: policy, prompt: `Ticket ${index}?` }),
    );
    await writeFile(file, [...lines, JSON.stringify({ id: 'other', prompt: 'Hello?' })].join('\n'));

    // Act
    const json = await runCli(['plan', file, '--json']);
    const readable = await runCli(['plan', file]);

    // Assess: written once at 1.25x and read 29 times at 0.1x instead of 30 times at 1x.
    const [prefix, ...others] = JSON.parse(json.stdout).sharedPrefixes;
    expect(others).toEqual([]);
    expect(prefix).toMatchObject({ modelId: 'global.anthropic.claude-opus-4-6-v1', blocks: 1, records: 30 });
    const savedTokens = 30 * prefix.tokens - (1.25 * prefix.tokens + 29 * 0.1 * prefix.tokens);
    expect(prefix.estimatedSavingUsd).toBeCloseTo((savedTokens * 5) / 1_000_000, 5);
    expect(readable.stdout).toMatch(
      /shared prefix: about [\d,]+ tokens in 30 records to global\.anthropic\.claude-opus-4-6-v1; caching saves about \$[\d.]+/,
    );
  });

  it('reads a .jsonl.gz as the pipeline does, and names gzip data that is not valid', async () => {
    // Prepare
    const lines = [
      JSON.stringify({ id: 'a', prompt: 'Hi' }),
      JSON.stringify({ id: 'b', prompt: 'There' }),
    ].join('\n');
    const good = path.join(work, 'two.jsonl.gz');
    const cut = path.join(work, 'cut.jsonl.gz');
    await writeFile(good, gzipSync(lines));
    await writeFile(cut, gzipSync(lines).subarray(0, 20));

    // Act
    const planned = await runCli(['plan', good, '--json']);
    const refused = await runCli(['plan', cut]);

    // Assess
    expect(planned.code).toBe(0);
    expect(JSON.parse(planned.stdout)).toMatchObject({ records: 2, valid: 2, errors: [] });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/cut\.jsonl\.gz is not valid gzip data/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it('says near which line a run would stop reading a file mostly of invalid lines, at its max-error-rate', async () => {
    // Prepare: one good line, then 150 lines in no known form.
    const junk = path.join(work, 'junk.jsonl');
    const lines = [JSON.stringify({ prompt: 'Hi' }), ...Array.from({ length: 150 }, () => '{}')];
    await writeFile(junk, lines.join('\n'));

    // Act
    const [atDefault, allowed, refused] = await Promise.all([
      runCli(['plan', junk, '--json']),
      runCli(['plan', junk, '--json', '--max-error-rate', '100%']),
      runCli(['plan', junk, '--max-error-rate', '2']),
    ]);

    // Assess
    expect(JSON.parse(atDefault.stdout)).toMatchObject({
      records: 151,
      valid: 1,
      maxErrorRate: 0.5,
      stopsNearLine: 100,
    });
    expect(JSON.parse(allowed.stdout)).not.toHaveProperty('stopsNearLine');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/--max-error-rate must be a fraction from 0 to 1 or a percentage/);
  });

  it('prints a readable plan: each error once with its line, a likely cost within its range, the batch price', async () => {
    // Act
    const result = await runInProcess(['plan', fixturePath('prompts/mixed.jsonl')]);

    // Assess
    expect(result.stdout).toMatch(/11 records, 6 valid, 5 with errors/);
    expect(result.stdout).toMatch(/^ {2}DUPLICATE_RECORD_ID: Line 9 repeats record id/m);
    expect(result.stdout).toMatch(/^ {2}line 11 UNKNOWN_MODEL: Unknown model/m);
    expect(result.stdout).not.toMatch(/line (\d+) \w+: Line \1 /);
    expect(result.stdout).toMatch(/^ {2}1 record to global\.anthropic\.claude-haiku/m);
    const [, likely, low, high] =
      /estimated cost: global \$([\d.]+) likely \(\$([\d.]+) to \$([\d.]+)\)/.exec(result.stdout) ?? [];
    expect(Number(low)).toBeLessThan(Number(likely));
    expect(Number(likely)).toBeLessThan(Number(high));
    const batch = /in the batch lane .*: \$([\d.]+) likely/.exec(result.stdout)?.[1];
    expect(Number(batch)).toBeCloseTo(Number(likely) / 2, 5);
    expect(result.stdout).toMatch(/within the first minute of quota/);
  });

  it('warns of records that need more than a minute of the quota each, and how long the largest takes', async () => {
    // Act
    const result = await runInProcess([
      'plan',
      fixturePath('prompts/long-document.jsonl'),
      '--quota-tpm',
      '100000',
    ]);
    const json = await runInProcess([
      'plan',
      fixturePath('prompts/long-document.jsonl'),
      '--quota-tpm',
      '100000',
      '--json',
    ]);

    // Assess
    const { overAMinuteOfQuota } = JSON.parse(json.stdout);
    expect(overAMinuteOfQuota).toMatchObject({ records: 1, tokensPerMinute: 100_000, largest: { line: 1 } });
    expect(overAMinuteOfQuota.largest.quotaTokens).toBeGreaterThan(100_000);
    expect(result.stdout).toMatch(
      /waits for tokens: 1 record needs more than a minute of the quota each \(line 1: up to [\d,]+ quota tokens against 100,000 a minute, about \d+ min of it alone\)/,
    );
  });

  it("prices --tier at the tier's prices where the catalog lists the tier, and at default where it does not", async () => {
    // Prepare: Haiku 4.5 takes flex at half price; Opus 4.6 takes no tier.
    const catalogFile = path.join(work, 'plan-tiers.json');
    await writeFile(catalogFile, JSON.stringify(haikuAtFlex()));
    const file = path.join(work, 'plan-tiers.jsonl');
    await writeFile(file, `${JSON.stringify({ prompt: 'Hi', max_tokens: 100 })}\n`);
    const plan = async (...options: string[]) =>
      JSON.parse((await runInProcess(['plan', file, '--json', '--catalog', catalogFile, ...options])).stdout);

    // Act
    const haikuDefault = await plan('--model', 'haiku-4.5');
    const haikuFlex = await plan('--model', 'haiku-4.5', '--tier', 'flex');
    const opusFlex = await plan('--model', 'opus-4.6', '--tier', 'flex');
    const opusDefault = await plan('--model', 'opus-4.6');

    // Assess
    expect(haikuFlex.estimatedCostUsd.global.high).toBeCloseTo(
      haikuDefault.estimatedCostUsd.global.high / 2,
      5,
    );
    expect(haikuFlex.tierNotTakenBy).toEqual([]);
    expect(opusFlex.estimatedCostUsd).toEqual(opusDefault.estimatedCostUsd);
    expect(opusFlex.tierNotTakenBy).toEqual(['global.anthropic.claude-opus-4-6-v1']);
  });

  it('says which records go to a model with no known price and leaves them out of the estimate', async () => {
    // Prepare
    const file = path.join(work, 'unpriced.jsonl');
    await writeFile(
      file,
      `${JSON.stringify({ id: 'a', prompt: 'Hi', model: 'sonnet-4.6' })}\n${JSON.stringify({ id: 'b', prompt: 'Hi' })}\n`,
    );

    // Act
    const result = await runInProcess(['plan', file]);
    const json = await runInProcess(['plan', file, '--json']);

    // Assess
    expect(JSON.parse(json.stdout).unpricedRecords).toEqual({ 'global.anthropic.claude-sonnet-4-6': 1 });
    expect(result.stdout).toMatch(
      /cost unknown for 1 record to global\.anthropic\.claude-sonnet-4-6: the catalog has no price for the model/,
    );
  });

  it('runs a model the built-in catalog lacks from a --catalog file, and lists it; a bad file is refused', async () => {
    // Prepare: a model that shipped after this release, with its price.
    const catalogFile = path.join(work, 'catalog.json');
    await writeFile(catalogFile, JSON.stringify({ models: [newCatalogModel()] }));
    const badFile = path.join(work, 'bad-catalog.json');
    await writeFile(badFile, JSON.stringify({ models: [{ key: 'haiku-6', displayName: 'Claude Haiku 6' }] }));
    const file = path.join(work, 'new-model.jsonl');
    await writeFile(
      file,
      `${JSON.stringify({ id: 'a', prompt: 'Hi' })}\n${JSON.stringify({ id: 'b', prompt: 'Hi' })}\n`,
    );

    // Act
    const run = await runInProcess([
      'run',
      file,
      '--out',
      work,
      '--speed',
      '0',
      '--json',
      '--model',
      'claude-haiku-5',
      '--catalog',
      catalogFile,
    ]);
    const listed = await runInProcess(['models', '--json', `--catalog=${catalogFile}`]);
    const refused = await runInProcess(['models', '--catalog', badFile]);
    const without = await runInProcess(['models', '--json']);

    // Assess
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ successRecordCount: 2, model: 'claude-haiku-5' });
    expect(JSON.parse(run.stdout).estimatedCostUsd).toBeGreaterThan(0);
    expect(JSON.parse(listed.stdout).models.map((model: { key: string }) => model.key)).toContain('haiku-5');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /The catalog .*bad-catalog\.json is invalid: models\[0\] \(key "haiku-6", a new model needs every field\)/,
    );
    expect(JSON.parse(without.stdout).models.map((model: { key: string }) => model.key)).not.toContain(
      'haiku-5',
    );
  }, 120_000);

  it('runs --tier flex: records of a model that takes flex on flex, the others on default, every one succeeded', async () => {
    // Prepare: the team's catalog says Haiku 4.5 takes flex at half price; Opus 4.6 takes no tier.
    const catalogFile = path.join(work, 'tiers.json');
    await writeFile(catalogFile, JSON.stringify(haikuAtFlex()));
    const file = path.join(work, 'tiers.jsonl');
    const lines = Array.from({ length: 6 }, (_, index) =>
      JSON.stringify({
        id: `r${index}`,
        prompt: `Hi ${index}`,
        ...(index % 2 === 0 ? { model: 'haiku-4.5' } : {}),
      }),
    );
    await writeFile(file, `${lines.join('\n')}\n`);

    // Act
    const run = await runInProcess([
      'run',
      file,
      '--out',
      work,
      '--speed',
      '0',
      '--tier',
      'flex',
      '--catalog',
      catalogFile,
    ]);
    const manifest = JSON.parse(await readFile(path.join(work, 'tiers.jsonl.manifest.json.out'), 'utf8'));

    // Assess
    expect(run.code).toBe(0);
    expect(manifest).toMatchObject({
      successRecordCount: 6,
      errorRecordCount: 0,
      tiers: { requested: 'flex', servedRecords: { flex: 3, default: 3, priority: 0 }, downgradedRecords: 3 },
    });
    expect(manifest.tiers.costUsd.flex).toBeGreaterThan(0);
    expect(run.stdout).toMatch(
      /service tier: asked flex; served default 3 records \(\$[\d.]+\), flex 3 records \(\$[\d.]+\); 3 records ran on default: Bedrock does not take flex for their models\n/,
    );
  }, 120_000);

  it('runs a model id the catalog does not list, its cost and window unknown; plans it, or refuses it with --unknown-models refuse', async () => {
    // Prepare: a model that shipped after this release, named by its Bedrock id.
    const file = path.join(work, 'unknown-model.jsonl');
    const line = (id: string, model?: string) =>
      JSON.stringify({ id, prompt: 'Hi', ...(model === undefined ? {} : { model }) });
    await writeFile(file, `${line('new', 'us.anthropic.claude-opus-5')}\n${line('known')}\n`);
    const run = (...options: string[]) =>
      runInProcess(['run', file, '--out', work, '--speed', '0', '--region', 'us-east-1', ...options]);

    // Act
    const allowed = await run();
    const manifest = JSON.parse(
      await readFile(path.join(work, 'unknown-model.jsonl.manifest.json.out'), 'utf8'),
    );
    const planned = JSON.parse((await runInProcess(['plan', file, '--json'])).stdout);
    const refused = JSON.parse(
      (await runInProcess(['plan', file, '--json', '--unknown-models', 'refuse'])).stdout,
    );

    // Assess
    expect(allowed.code).toBe(0);
    expect(manifest).toMatchObject({
      successRecordCount: 2,
      unpriced: { records: 1 },
      unknownModels: [{ modelId: 'us.anthropic.claude-opus-5', records: 1 }],
    });
    expect(allowed.stdout).toContain(
      'not in the catalog: us.anthropic.claude-opus-5 (1 record): its cost and context window are unknown\n',
    );
    expect(planned).toMatchObject({ valid: 2, unknownModels: ['us.anthropic.claude-opus-5'] });
    expect(refused).toMatchObject({
      valid: 1,
      unknownModels: [],
      errors: [{ line: 1, code: 'UNKNOWN_MODEL' }],
    });
  }, 120_000);
});
