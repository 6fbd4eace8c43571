import type { CacheSummary } from '../shared/output/manifest.ts';
import type { JobStats } from '../shared/pipeline/job-stats.ts';
import type { PoolLeftOutReport, ReportedQuota } from '../shared/quotas/pool-report.ts';

/** The manifest fields the report reads (the finalizer writes them all). */
export interface ReportManifest {
  readonly jobId?: string;
  readonly status?: string;
  readonly input?: string;
  readonly model?: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly startedAt?: string;
  readonly durationSeconds?: number;
  readonly totalRecordCount: number;
  readonly successRecordCount: number;
  readonly errorRecordCount: number;
  readonly canceledRecordCount?: number;
  readonly inputTokenCount: number;
  readonly outputTokenCount: number;
  readonly cacheCreationInputTokenCount?: number;
  readonly cacheReadInputTokenCount?: number;
  readonly estimatedCostUsd: number;
  readonly cache?: CacheSummary;
  readonly pricesCheckedOn?: string;
  readonly lane?: string;
  /** Records, tokens and cost each lane answered, at its own price. */
  readonly lanes?: JobStats['perLane'];
  /** Records, tokens and cost each quota pool answered, with its quota where the finalizer knew it. */
  readonly pools?: ReadonlyArray<
    JobStats['perPool'][number] & { readonly endpoint?: string; readonly quota?: ReportedQuota }
  >;
  readonly poolsLeftOut?: readonly PoolLeftOutReport[];
  readonly stats?: JobStats;
}

const escapeHtml = (text: unknown): string =>
  String(text ?? '').replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
const format = (value: number): string => value.toLocaleString('en-US');

/**
 * A job report as one self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched): the
 * numbers of the manifest, records finished over time, retries and throttles, the latency distribution, and
 * tokens and cost per model.
 */
export function renderReport(manifest: ReportManifest): string {
  const stats = manifest.stats;
  const latency = stats?.latencyMs;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Batch job report ${escapeHtml(manifest.jobId)}</title>
${REPORT_STYLE}
</head>
<body>
<h1>Batch job ${escapeHtml(manifest.jobId)}</h1>
<div class="subtitle">${escapeHtml(manifest.status)} · ${escapeHtml(manifest.input)} · ${escapeHtml(manifest.model)} · ${escapeHtml(manifest.endpoint)} · ${escapeHtml(manifest.region)} · ${escapeHtml(manifest.durationSeconds)} s</div>
<div class="metrics">
${headlineMetrics(manifest)}
</div>
${failedRecords(stats)}
<h2>Records finished over time</h2>
${throughputChart(stats)}
<h2>Model latency</h2>
<p data-metric="latency">p50 ${escapeHtml(latency?.p50 ?? '-')} ms · p90 ${escapeHtml(latency?.p90 ?? '-')} ms · p99 ${escapeHtml(latency?.p99 ?? '-')} ms · max ${escapeHtml(latency?.max ?? '-')} ms (${format(latency?.count ?? 0)} calls)</p>
${latencyChart(stats)}
${promptCache(manifest.cache)}
<h2>Tokens and cost per lane</h2>
<table>
<thead><tr><th>lane</th><th>records</th><th>input</th><th>output</th><th>cache write</th><th>cache read</th><th>cost</th></tr></thead>
<tbody>
${laneRows(manifest.lanes ?? stats?.perLane)}
</tbody>
</table>
${poolSection(manifest)}
<h2>Tokens and cost per model</h2>
<table>
<thead><tr><th>model</th><th>records</th><th>input</th><th>output</th><th>cache write</th><th>cache read</th><th>cost</th></tr></thead>
<tbody>
${perModelRows(stats)}
</tbody>
</table>
<p class="note">Costs are estimates from the pipeline's price catalog (prices of ${escapeHtml(manifest.pricesCheckedOn)}); Bedrock bills what it bills.</p>
</body>
</html>
`;
}

const REPORT_STYLE = `<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; max-width: 60rem; }
  h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
  .subtitle { color: #52606d; margin-bottom: 1.5rem; }
  .metrics { display: grid; grid-template-columns: repeat(5, 1fr); gap: 0.8rem; margin-bottom: 2rem; }
  .metric { background: #f5f7fa; border-radius: 6px; padding: 0.7rem; }
  .value { font-size: 1.3rem; font-weight: 600; }
  .label { color: #52606d; font-size: 0.8rem; }
  h2 { font-size: 1.05rem; margin-top: 2rem; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
  th, td { text-align: right; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e4e7eb; }
  th:first-child, td:first-child { text-align: left; }
  svg { background: #fbfcfd; border: 1px solid #e4e7eb; border-radius: 6px; }
  .note { color: #52606d; font-size: 0.8rem; }
</style>`;

/** The numbers at the top: records by outcome, tokens, cost, retries, throttles and budget waits. */
function headlineMetrics(manifest: ReportManifest): string {
  const stats = manifest.stats;
  const metric = (name: string, label: string, value: string) =>
    `<div class="metric"><div class="value" data-metric="${name}">${escapeHtml(value)}</div><div class="label">${escapeHtml(label)}</div></div>`;
  return [
    metric('totalRecordCount', 'records', format(manifest.totalRecordCount)),
    metric('successRecordCount', 'succeeded', format(manifest.successRecordCount)),
    metric('errorRecordCount', 'failed', format(manifest.errorRecordCount)),
    metric('canceledRecordCount', 'canceled', format(manifest.canceledRecordCount ?? 0)),
    metric('inputTokenCount', 'input tokens', format(manifest.inputTokenCount)),
    metric('outputTokenCount', 'output tokens', format(manifest.outputTokenCount)),
    metric('estimatedCostUsd', 'estimated cost (USD)', `$${manifest.estimatedCostUsd}`),
    metric('retried', 'retried attempts', format(stats?.retries.retried ?? 0)),
    metric('bedrockThrottles', 'Bedrock throttles', format(stats?.retries.bedrockThrottles ?? 0)),
    metric('budgetWaits', 'waited 1 s or more for tokens', format(stats?.retries.budgetWaits ?? 0)),
    metric('sentBackToWait', 'sent back to the queue to wait', format(stats?.retries.sentBackToWait ?? 0)),
    metric('receivesPerRecord', 'SQS receives a record', perRecord(stats?.retries.receives, manifest)),
    metric(
      'bedrockCallsPerRecord',
      'Bedrock calls a record',
      perRecord(stats?.retries.bedrockCalls, manifest),
    ),
  ].join('\n');
}

/** A job counter over its records, to two decimals; a dash where the manifest predates the counter. */
function perRecord(count: number | undefined, manifest: { readonly totalRecordCount: number }): string {
  if (count === undefined || manifest.totalRecordCount === 0) return '-';
  return (count / manifest.totalRecordCount).toFixed(2);
}

/** What the prompt cache did, for a job whose calls used it. */
function promptCache(cache: CacheSummary | undefined): string {
  if (cache === undefined || cache.hitRate === null) return '';
  const used = cache.hitRecords + cache.missRecords;
  return `<h2>Prompt cache</h2>
<p data-metric="cache">hit rate ${(cache.hitRate * 100).toFixed(1)}% (${format(cache.hitRecords)} of ${format(used)} records read it) · ${format(cache.readTokens)} tokens read · ${format(cache.writeTokens)} written · saved $${cache.savingUsd} of $${cache.uncachedCostUsd} the same calls cost without it</p>`;
}

type TotalsRow = JobStats['perModel'][number];

function totalsRow(name: string, totals: Omit<TotalsRow, 'modelId'>, attribute: string): string {
  return `<tr ${attribute}><td>${escapeHtml(name)}</td><td>${format(totals.records)}</td><td>${format(totals.inputTokens)}</td><td>${format(totals.outputTokens)}</td><td>${format(totals.cacheWriteTokens)}</td><td>${format(totals.cacheReadTokens)}</td><td>$${totals.estimatedCostUsd}</td></tr>`;
}

function perModelRows(stats: ReportManifest['stats']): string {
  return (stats?.perModel ?? [])
    .map((model) => totalsRow(model.modelId, model, `data-model="${escapeHtml(model.modelId)}"`))
    .join('\n');
}

/** Which records failed and why: each error code with its records and the first line that has it. */
function failedRecords(stats: JobStats | undefined): string {
  const errors = stats?.errors ?? [];
  if (errors.length === 0) return '';
  const rows = errors.map(
    (error) =>
      `<tr data-error-code="${escapeHtml(error.code)}"><td>${escapeHtml(error.code)}</td><td>${format(error.records)}</td><td>${format(error.firstLine)}</td></tr>`,
  );
  return `<h2>Failed records</h2>
<table>
<thead><tr><th>error code</th><th>records</th><th>first line</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
<p class="note">The output file has each failed record's message, on its line.</p>`;
}

/** Where the file's calls went when it spread over several quota pools, and the pools it could not use. */
function poolSection(manifest: ReportManifest): string {
  const pools = manifest.pools ?? [];
  const leftOut = manifest.poolsLeftOut ?? [];
  if (pools.length < 2 && leftOut.length === 0) return '';
  const quota = (pool: (typeof pools)[number]) =>
    pool.quota === undefined
      ? '-'
      : `${format(pool.quota.usableTokensPerMinute)} (${escapeHtml(pool.quota.origin)})`;
  const rows = pools.map(
    (pool) =>
      `<tr data-pool="${escapeHtml(`${pool.region}#${pool.modelId}`)}"><td>${escapeHtml(pool.region)} ${escapeHtml(pool.modelId)}</td><td>${quota(pool)}</td><td>${format(pool.records)}</td><td>${format(pool.inputTokens)}</td><td>${format(pool.outputTokens)}</td><td>$${pool.estimatedCostUsd}</td></tr>`,
  );
  const notes = leftOut.map(
    (pool) =>
      `<p class="note" data-pool-left-out="${escapeHtml(`${pool.region}#${pool.modelId}`)}">Left out: ${escapeHtml(pool.region)} ${escapeHtml(pool.modelId)}: ${escapeHtml(pool.reason)}</p>`,
  );
  return `<h2>Quota pools</h2>
<table>
<thead><tr><th>pool</th><th>tokens a minute spent by</th><th>records</th><th>input</th><th>output</th><th>cost</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
${notes.join('\n')}`;
}

const LANE_NAMES: Readonly<Record<string, string>> = { onDemand: 'on demand', batch: 'batch (batch price)' };

function laneRows(lanes: ReportManifest['lanes']): string {
  return Object.entries(lanes ?? {})
    .map(([lane, totals]) => totalsRow(LANE_NAMES[lane] ?? lane, totals, `data-lane="${escapeHtml(lane)}"`))
    .join('\n');
}

const WIDTH = 720;
const HEIGHT = 180;

function bars(values: readonly number[], labels: readonly string[], title: string): string {
  const most = Math.max(1, ...values);
  const width = WIDTH / Math.max(1, values.length);
  const rects = values
    .map((value, index) => {
      const height = Math.round((value / most) * (HEIGHT - 30));
      return `<rect x="${(index * width + 1).toFixed(1)}" y="${HEIGHT - 20 - height}" width="${Math.max(1, width - 2).toFixed(1)}" height="${height}" fill="#3e7cb1"><title>${escapeHtml(labels[index])}: ${value}</title></rect>`;
    })
    .join('');
  return `<svg role="img" aria-label="${escapeHtml(title)}" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" xmlns="http://www.w3.org/2000/svg">${rects}<text x="4" y="${HEIGHT - 5}" font-size="11" fill="#52606d">${escapeHtml(labels[0] ?? '')}</text><text x="${WIDTH - 4}" y="${HEIGHT - 5}" font-size="11" fill="#52606d" text-anchor="end">${escapeHtml(labels.at(-1) ?? '')}</text><text x="4" y="12" font-size="11" fill="#52606d">max ${most}</text></svg>`;
}

function throughputChart(stats: JobStats | undefined): string {
  if (stats === undefined || stats.throughput.completed.length === 0)
    return '<p class="note">No timing recorded.</p>';
  const { bucketSeconds, completed } = stats.throughput;
  return bars(
    completed,
    completed.map((_, index) => `${index * bucketSeconds} s`),
    `records finished per ${bucketSeconds} s`,
  );
}

function latencyChart(stats: JobStats | undefined): string {
  if (stats === undefined || stats.latencyMs.histogram.length === 0)
    return '<p class="note">No model calls.</p>';
  const { histogram } = stats.latencyMs;
  return bars(
    histogram.map((bucket) => bucket.count),
    histogram.map((bucket) => (bucket.upToMs === null ? 'longer' : `≤ ${bucket.upToMs} ms`)),
    'latency distribution',
  );
}
