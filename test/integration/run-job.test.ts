import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runLocalJob } from '../../local/run-job.ts';
import { fixturePath } from '../support/factories.ts';

describe('runLocalJob (what npm start runs)', () => {
  let outDir = '';
  afterAll(() => rm(outDir, { recursive: true, force: true }));

  it('runs the embedded sample through the local pipeline and writes its output and manifest', async () => {
    // Prepare
    outDir = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-out-'));
    const log: string[] = [];

    // Act
    const result = await runLocalJob({
      file: fixturePath('prompts/sample.jsonl'),
      outDir,
      speed: 0,
      log: (line) => log.push(line),
    });

    // Assess
    const lines = (await readFile(result.outputPath, 'utf8'))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines).toHaveLength(20);
    expect(lines.map((line) => line.id ?? line.recordId ?? line.custom_id).slice(0, 4)).toEqual([
      'release-notes',
      'sql-explain',
      'haiku-queues',
      'classify-001',
    ]);
    expect(lines[13]).toMatchObject({
      id: 'bad-role',
      status: 'errored',
      error: { code: 'INVALID_REQUEST' },
    });
    expect(JSON.parse(await readFile(result.manifestPath, 'utf8'))).toMatchObject({
      totalRecordCount: 20,
      successRecordCount: 19,
      errorRecordCount: 1,
      status: 'completed',
    });
    expect(log.at(-1)).toMatch(/^Batch Job Completed: results in /);
  }, 120_000);

  it('reports a job that failed as a whole (a bad file option) as JOB_FAILED with the reason', async () => {
    // Act
    const run = runLocalJob({
      file: fixturePath('prompts/sample.jsonl'),
      outDir,
      speed: 0,
      metadata: { 'max-tokens': 'many' },
      log: () => {},
    });

    // Assess
    await expect(run).rejects.toMatchObject({
      code: 'JOB_FAILED',
      message: expect.stringMatching(/file option max-tokens/),
    });
  }, 120_000);
});
