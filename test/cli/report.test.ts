import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { fixturePath } from '../support/factories.ts';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';

/** Debian's Chromium, headless, with nothing that would reach beyond this machine. */
async function chromium(args: string[], profile: string) {
  const flags = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${profile}`,
  ];
  return run(CHROMIUM, [...flags, ...args], { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
}

let work = '';
let manifest: Record<string, unknown> & {
  stats: { perModel: Array<{ modelId: string; estimatedCostUsd: number }> };
};
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-report-'));
  const result = await runCli(['run', fixturePath('prompts/sample.jsonl'), '--out', work, '--speed', '0.05']);
  if (result.code !== 0) throw new Error(result.stderr);
  manifest = JSON.parse(await readFile(path.join(work, 'sample.jsonl.manifest.json.out'), 'utf8'));
}, 120_000);
afterAll(() => rm(work, { recursive: true, force: true }));

describe('bedrock-batch report', () => {
  it('draws a self-contained page that Chromium renders with the numbers of the manifest', async () => {
    // Prepare
    const html = path.join(work, 'report.html');

    // Act
    const result = await runCli([
      'report',
      path.join(work, 'sample.jsonl.manifest.json.out'),
      '--html',
      html,
    ]);
    const { stdout: dom } = await chromium(['--dump-dom', `file://${html}`], path.join(work, 'profile-dom'));
    await chromium(
      ['--window-size=1000,1100', `--screenshot=${path.join(work, 'report.png')}`, `file://${html}`],
      path.join(work, 'profile-shot'),
    );

    // Assess
    expect(result.code).toBe(0);
    const shown = (name: string) => new RegExp(`data-metric="${name}">([^<]*)<`).exec(dom)?.[1];
    expect(shown('totalRecordCount')).toBe(String(manifest.totalRecordCount));
    expect(shown('successRecordCount')).toBe(String(manifest.successRecordCount));
    expect(shown('errorRecordCount')).toBe(String(manifest.errorRecordCount));
    expect(shown('inputTokenCount')).toBe(Number(manifest.inputTokenCount).toLocaleString('en-US'));
    expect(shown('outputTokenCount')).toBe(Number(manifest.outputTokenCount).toLocaleString('en-US'));
    expect(shown('estimatedCostUsd')).toBe(`$${manifest.estimatedCostUsd}`);
    for (const model of manifest.stats.perModel) {
      expect(dom).toContain(model.modelId);
      expect(dom).toContain(`$${model.estimatedCostUsd}`);
    }
    expect(dom).toMatch(/<svg role="img" aria-label="records finished per \d+ s"/);
    expect(dom).toMatch(/<svg role="img" aria-label="latency distribution"/);
    expect((await stat(path.join(work, 'report.png'))).size).toBeGreaterThan(10_000);
    expect(await readFile(html, 'utf8')).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  }, 120_000);

  it('refuses to run without a place for the page', async () => {
    const result = await runCli(['report', path.join(work, 'sample.jsonl.manifest.json.out')]);
    expect(result).toMatchObject({ code: 2, stderr: expect.stringMatching(/Give --html report\.html/) });
  });
});
