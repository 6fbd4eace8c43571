import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import chromium from '@sparticuz/chromium';
import puppeteer from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRetries } from '../../shared/core/model.ts';
import { runCli } from '../support/cli.ts';
import { fixturePath } from '../support/factories.ts';

/**
 * The page in a real, headless Chromium (carried by an npm package: no system browser needed), allowed to
 * load nothing but the file itself: what it tried to fetch elsewhere is returned, to show it is self-contained.
 */
async function render(
  url: string,
  screenshotPath: string,
): Promise<{ dom: string; fetchedElsewhere: string[]; phoneOverflow: number }> {
  const browser = await puppeteer.launch({
    executablePath: await chromium.executablePath(),
    args: [
      ...chromium.args,
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-quic',
    ],
    headless: true,
  });
  try {
    const page = await browser.newPage();
    const fetchedElsewhere: string[] = [];
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      if (request.url().startsWith('file:') || request.url().startsWith('data:'))
        return void request.continue();
      fetchedElsewhere.push(request.url());
      return void request.abort();
    });
    await page.setViewport({ width: 1000, height: 1100 });
    await page.goto(url, { waitUntil: 'load' });
    await page.screenshot({ path: screenshotPath as `${string}.png`, fullPage: true });
    const dom = await page.content();
    // A phone's width: how far the page reaches beyond it (tables scroll inside their own box).
    await page.setViewport({ width: 390, height: 844 });
    const phoneOverflow = Number(
      await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'),
    );
    return { dom, fetchedElsewhere, phoneOverflow };
  } finally {
    await browser.close();
  }
}

let work = '';
let manifest: Record<string, unknown> & {
  totalRecordCount: number;
  successRecordCount: number;
  stats: {
    perModel: Array<{ modelId: string; records: number; estimatedCostUsd: number }>;
    retries: JobRetries;
  };
  lanes: Record<string, { records: number; estimatedCostUsd: number }>;
};
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'bedrock-batch-report-'));
  const result = await runCli(['run', fixturePath('prompts/sample.jsonl'), '--out', work, '--speed', '0.05']);
  if (result.code !== 0) throw new Error(result.stderr);
  manifest = JSON.parse(await readFile(path.join(work, 'sample.jsonl.manifest.json.out'), 'utf8'));
}, 120_000);
afterAll(() => rm(work, { recursive: true, force: true }));

describe('bedrock-batch report', () => {
  it('draws a self-contained page that a real browser renders with the numbers of the manifest', async () => {
    // Prepare
    const html = path.join(work, 'report.html');

    // Act
    const result = await runCli([
      'report',
      path.join(work, 'sample.jsonl.manifest.json.out'),
      '--html',
      html,
    ]);
    const { dom, fetchedElsewhere, phoneOverflow } = await render(
      `file://${html}`,
      path.join(work, 'report.png'),
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
    const { retries } = manifest.stats;
    expect(shown('receivesPerRecord')).toBe((retries.receives / manifest.totalRecordCount).toFixed(2));
    expect(shown('bedrockCallsPerRecord')).toBe(
      (retries.bedrockCalls / manifest.totalRecordCount).toFixed(2),
    );
    expect(retries.bedrockCalls).toBeGreaterThanOrEqual(manifest.successRecordCount);
    for (const model of manifest.stats.perModel) {
      expect(dom).toContain(model.modelId);
      expect(dom).toContain(`$${model.estimatedCostUsd}`);
    }
    const laneRow =
      /<tr data-lane="onDemand"><td>on demand<\/td><td>([^<]*)<\/td>.*?<td>\$([^<]*)<\/td><\/tr>/.exec(dom);
    expect(laneRow?.slice(1)).toEqual([
      String(manifest.lanes.onDemand?.records),
      String(manifest.lanes.onDemand?.estimatedCostUsd),
    ]);
    // Charts with axes a person reads: records done from 0 to all, times below, latency bands named.
    expect(dom).toMatch(/<svg role="img" aria-label="records done over time"/);
    expect(dom).toContain(`data-y-tick="${manifest.totalRecordCount}">${manifest.totalRecordCount}<`);
    expect(dom).toMatch(/data-x-tick="0">0 s</);
    expect(dom).toMatch(/<svg role="img" aria-label="latency distribution"/);
    expect(dom).toMatch(/data-band="≤ [\d,]+ ms"/);
    // The models the records went to, and which records failed and why.
    const models = /data-models="">models? ([^<]*)</.exec(dom)?.[1];
    expect(models).toBe(
      manifest.stats.perModel.map((model) => `${model.modelId} (${model.records})`).join(', '),
    );
    expect(dom).toMatch(/<tr data-error-code="[A-Z_]+"><td>[A-Z_]+<\/td><td>1<\/td><td>\d+<\/td><\/tr>/);
    expect(phoneOverflow).toBe(0);
    expect((await stat(path.join(work, 'report.png'))).size).toBeGreaterThan(10_000);
    expect(fetchedElsewhere).toEqual([]);
    expect(await readFile(html, 'utf8')).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  }, 120_000);

  it('without --html, writes the page here, named after the input', async () => {
    // Act
    const result = await runCli(
      ['report', path.join(work, 'sample.jsonl.manifest.json.out')],
      {},
      { cwd: work },
    );

    // Assess
    expect(result).toMatchObject({ code: 0, stdout: 'sample.jsonl.report.html\n' });
    expect(await readFile(path.join(work, 'sample.jsonl.report.html'), 'utf8')).toContain('<!doctype html>');
  });
});
