import type { CacheSummary, TierSummary } from '../shared/output/manifest.ts';
import type { JobStats } from '../shared/pipeline/job-stats.ts';
import type { PoolLeftOutReport, ReportedQuota } from '../shared/quotas/pool-report.ts';
import { duration, number, tierSentence } from './words.ts';

/** The manifest fields the report reads (the finalizer writes them all). */
export interface ReportManifest {
  readonly jobId?: string;
  readonly status?: string;
  /** Why the job ended as it did, when not as asked. */
  readonly reason?: string;
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
  readonly tiers?: TierSummary;
  /** Models the records went to that the catalog does not list. */
  readonly unknownModels?: ReadonlyArray<{ readonly modelId: string; readonly records: number }>;
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
<div class="subtitle">${escapeHtml(manifest.status)} · ${escapeHtml(manifest.input)} · ${escapeHtml(manifest.endpoint)} · ${escapeHtml(manifest.region)} · ${escapeHtml(manifest.durationSeconds)} s</div>
${modelsUsed(manifest)}
${cancelPoint(manifest)}
<div class="metrics">
${headlineMetrics(manifest)}
</div>
${failedRecords(stats)}
<h2>Records done over time</h2>
${progressChart(stats, manifest.totalRecordCount)}
<h2>Model latency</h2>
<p data-metric="latency">p50 ${escapeHtml(latency?.p50 ?? '-')} ms · p90 ${escapeHtml(latency?.p90 ?? '-')} ms · p99 ${escapeHtml(latency?.p99 ?? '-')} ms · max ${escapeHtml(latency?.max ?? '-')} ms (${number(latency?.count ?? 0)} calls)</p>
${latencyChart(stats)}
${promptCache(manifest.cache)}
${serviceTiers(manifest.tiers)}
<h2>Tokens and cost per lane</h2>
<div class="table">
<table>
<thead><tr><th>lane</th><th>records</th><th>input</th><th>output</th><th>cache write</th><th>cache read</th><th>cost</th></tr></thead>
<tbody>
${laneRows(manifest.lanes ?? stats?.perLane)}
</tbody>
</table>
</div>
${poolSection(manifest)}
<h2>Tokens and cost per model</h2>
<div class="table">
<table>
<thead><tr><th>model</th><th>records</th><th>input</th><th>output</th><th>cache write</th><th>cache read</th><th>cost</th></tr></thead>
<tbody>
${perModelRows(stats)}
</tbody>
</table>
</div>
<p class="note">Costs are estimates from the pipeline's price catalog (prices of ${escapeHtml(manifest.pricesCheckedOn)}); Bedrock bills what it bills.</p>
</body>
</html>
`;
}

const REPORT_STYLE = `<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; color: #1f2933; max-width: 60rem; }
  h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
  .subtitle { color: #52606d; margin-bottom: 1.5rem; }
  .metrics { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: 0.8rem; margin-bottom: 2rem; }
  .metric { background: #f5f7fa; border-radius: 6px; padding: 0.7rem; }
  .value { font-size: 1.3rem; font-weight: 600; }
  .label { color: #52606d; font-size: 0.8rem; }
  h2 { font-size: 1.05rem; margin-top: 2rem; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
  th, td { text-align: right; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e4e7eb; }
  th:first-child, td:first-child { text-align: left; }
  svg { background: #fbfcfd; border: 1px solid #e4e7eb; border-radius: 6px; width: 100%; height: auto; }
  .table { overflow-x: auto; }
  .subtitle, .models, .canceled { overflow-wrap: anywhere; }
  .models { margin-bottom: 1rem; }
  .canceled { color: #9b2c2c; }
  @media (max-width: 40rem) {
    body { margin: 0.8rem; }
    .value { font-size: 1.1rem; }
  }
  .note { color: #52606d; font-size: 0.8rem; }
</style>`;

/** The numbers at the top: records by outcome, tokens, cost, retries, throttles and budget waits. */
function headlineMetrics(manifest: ReportManifest): string {
  const stats = manifest.stats;
  const metric = (name: string, label: string, value: string) =>
    `<div class="metric"><div class="value" data-metric="${name}">${escapeHtml(value)}</div><div class="label">${escapeHtml(label)}</div></div>`;
  return [
    metric('totalRecordCount', 'records', number(manifest.totalRecordCount)),
    metric('successRecordCount', 'succeeded', number(manifest.successRecordCount)),
    metric('errorRecordCount', 'failed', number(manifest.errorRecordCount)),
    metric('canceledRecordCount', 'canceled', number(manifest.canceledRecordCount ?? 0)),
    metric('inputTokenCount', 'input tokens', number(manifest.inputTokenCount)),
    metric('outputTokenCount', 'output tokens', number(manifest.outputTokenCount)),
    metric('estimatedCostUsd', 'estimated cost (USD)', `$${manifest.estimatedCostUsd}`),
    metric('retried', 'retried attempts', number(stats?.retries.retried ?? 0)),
    metric('bedrockThrottles', 'Bedrock throttles', number(stats?.retries.bedrockThrottles ?? 0)),
    metric('budgetWaits', 'waited 1 s or more for tokens', number(stats?.retries.budgetWaits ?? 0)),
    metric('sentBackToWait', 'sent back to the queue to wait', number(stats?.retries.sentBackToWait ?? 0)),
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
<p data-metric="cache">hit rate ${(cache.hitRate * 100).toFixed(1)}% (${number(cache.hitRecords)} of ${number(used)} records read it) · ${number(cache.readTokens)} tokens read · ${number(cache.writeTokens)} written · saved $${cache.savingUsd} of $${cache.uncachedCostUsd} the same calls cost without it</p>`;
}

/** Which service tiers answered, when a tier other than default was asked for or served. */
function serviceTiers(tiers: TierSummary | undefined): string {
  const sentence = tierSentence(tiers);
  if (sentence === undefined) return '';
  return `<h2>Service tiers</h2>\n<p data-metric="tiers">${escapeHtml(sentence)}</p>`;
}

type TotalsRow = JobStats['perModel'][number];

function totalsRow(name: string, totals: Omit<TotalsRow, 'modelId'>, attribute: string): string {
  return `<tr ${attribute}><td>${escapeHtml(name)}</td><td>${number(totals.records)}</td><td>${number(totals.inputTokens)}</td><td>${number(totals.outputTokens)}</td><td>${number(totals.cacheWriteTokens)}</td><td>${number(totals.cacheReadTokens)}</td><td>$${totals.estimatedCostUsd}</td></tr>`;
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
      `<tr data-error-code="${escapeHtml(error.code)}"><td>${escapeHtml(error.code)}</td><td>${number(error.records)}</td><td>${number(error.firstLine)}</td></tr>`,
  );
  return `<h2>Failed records</h2>
<div class="table">
<table>
<thead><tr><th>error code</th><th>records</th><th>first line</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</div>
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
      : `${number(pool.quota.usableTokensPerMinute)} (${escapeHtml(pool.quota.origin)})`;
  const rows = pools.map(
    (pool) =>
      `<tr data-pool="${escapeHtml(`${pool.region}#${pool.modelId}`)}"><td>${escapeHtml(pool.region)} ${escapeHtml(pool.modelId)}</td><td>${quota(pool)}</td><td>${number(pool.records)}</td><td>${number(pool.inputTokens)}</td><td>${number(pool.outputTokens)}</td><td>$${pool.estimatedCostUsd}</td></tr>`,
  );
  const notes = leftOut.map(
    (pool) =>
      `<p class="note" data-pool-left-out="${escapeHtml(`${pool.region}#${pool.modelId}`)}">Left out: ${escapeHtml(pool.region)} ${escapeHtml(pool.modelId)}: ${escapeHtml(pool.reason)}</p>`,
  );
  return `<h2>Quota pools</h2>
<div class="table">
<table>
<thead><tr><th>pool</th><th>tokens a minute spent by</th><th>records</th><th>input</th><th>output</th><th>cost</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</div>
${notes.join('\n')}`;
}

const LANE_NAMES: Readonly<Record<string, string>> = { onDemand: 'on demand', batch: 'batch (batch price)' };

function laneRows(lanes: ReportManifest['lanes']): string {
  return Object.entries(lanes ?? {})
    .map(([lane, totals]) => totalsRow(LANE_NAMES[lane] ?? lane, totals, `data-lane="${escapeHtml(lane)}"`))
    .join('\n');
}

const WIDTH = 720;
const HEIGHT = 220;
/** The plot inside a chart: room on the left for the counts, below for the times. */
const PLOT = { left: 52, right: 12, top: 12, bottom: 36 } as const;
const AXIS_TEXT = 'font-size="11" fill="#52606d"';

/** A chart's frame: the y axis with its ticks and labels, the x axis line, and the axis titles. */
function frame(yMax: number, yTitle: string, xTitle: string): string {
  const bottom = HEIGHT - PLOT.bottom;
  const y = (value: number) => bottom - (value / Math.max(1, yMax)) * (bottom - PLOT.top);
  const ticks = [...new Set([0, Math.round(yMax / 2), yMax])].map(
    (value) =>
      `<line x1="${PLOT.left}" x2="${WIDTH - PLOT.right}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#e4e7eb"/>` +
      `<text x="${PLOT.left - 6}" y="${(y(value) + 4).toFixed(1)}" ${AXIS_TEXT} text-anchor="end" data-y-tick="${value}">${number(value)}</text>`,
  );
  return (
    ticks.join('') +
    `<line x1="${PLOT.left}" x2="${WIDTH - PLOT.right}" y1="${bottom}" y2="${bottom}" stroke="#9aa5b1"/>` +
    `<text x="12" y="${(PLOT.top + bottom) / 2}" ${AXIS_TEXT} text-anchor="middle" transform="rotate(-90 12 ${(PLOT.top + bottom) / 2})">${escapeHtml(yTitle)}</text>` +
    `<text x="${(PLOT.left + WIDTH - PLOT.right) / 2}" y="${HEIGHT - 4}" ${AXIS_TEXT} text-anchor="middle">${escapeHtml(xTitle)}</text>`
  );
}

function svg(title: string, body: string): string {
  return `<svg role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${WIDTH} ${HEIGHT}" xmlns="http://www.w3.org/2000/svg">${body}</svg>`;
}

/**
 * Records done as the job went: a line rising from 0 to the records done, over the job's time, with the
 * counts on the left and the times below. It reads better than a count per interval, which spikes.
 */
function progressChart(stats: JobStats | undefined, totalRecords: number): string {
  if (stats === undefined || stats.throughput.completed.length === 0)
    return '<p class="note">No timing recorded.</p>';
  const { bucketSeconds, completed } = stats.throughput;
  const done = [0];
  for (const count of completed) done.push((done.at(-1) ?? 0) + count);
  const yMax = Math.max(1, totalRecords, done.at(-1) ?? 0);
  const seconds = completed.length * bucketSeconds;
  const bottom = HEIGHT - PLOT.bottom;
  const x = (at: number) => PLOT.left + (at / Math.max(1, seconds)) * (WIDTH - PLOT.left - PLOT.right);
  const y = (value: number) => bottom - (value / yMax) * (bottom - PLOT.top);
  const points = done.map((value, index) => `${x(index * bucketSeconds).toFixed(1)},${y(value).toFixed(1)}`);
  const xTicks = [0, 0.25, 0.5, 0.75, 1].map((share) => {
    const at = share * seconds;
    return `<text x="${x(at).toFixed(1)}" y="${bottom + 14}" ${AXIS_TEXT} text-anchor="${share === 0 ? 'start' : share === 1 ? 'end' : 'middle'}" data-x-tick="${Math.round(at)}">${duration(at)}</text>`;
  });
  return svg(
    'records done over time',
    frame(yMax, 'records done', 'time since the job started') +
      xTicks.join('') +
      `<polygon points="${PLOT.left},${bottom} ${points.join(' ')} ${x(seconds).toFixed(1)},${bottom}" fill="#3e7cb1" fill-opacity="0.12"/>` +
      `<polyline points="${points.join(' ')}" fill="none" stroke="#3e7cb1" stroke-width="2"><title>${number(done.at(-1) ?? 0)} records done in ${duration(seconds)}</title></polyline>`,
  );
}

/** How long model calls took: a bar per latency band with its count on it, the bands named below. */
function latencyChart(stats: JobStats | undefined): string {
  if (stats === undefined || stats.latencyMs.histogram.length === 0)
    return '<p class="note">No model calls.</p>';
  const { histogram } = stats.latencyMs;
  const most = Math.max(1, ...histogram.map((bucket) => bucket.count));
  const bottom = HEIGHT - PLOT.bottom;
  const slot = (WIDTH - PLOT.left - PLOT.right) / histogram.length;
  const bars = histogram.map((bucket, index) => {
    const height = (bucket.count / most) * (bottom - PLOT.top);
    const left = PLOT.left + index * slot;
    const band = bucket.upToMs === null ? 'longer' : `≤ ${number(bucket.upToMs)} ms`;
    return (
      `<rect x="${(left + 2).toFixed(1)}" y="${(bottom - height).toFixed(1)}" width="${Math.max(1, slot - 4).toFixed(1)}" height="${height.toFixed(1)}" fill="#3e7cb1"><title>${escapeHtml(band)}: ${number(bucket.count)} calls</title></rect>` +
      (bucket.count > 0
        ? `<text x="${(left + slot / 2).toFixed(1)}" y="${(bottom - height - 3).toFixed(1)}" ${AXIS_TEXT} text-anchor="middle">${number(bucket.count)}</text>`
        : '') +
      `<text x="${(left + slot / 2).toFixed(1)}" y="${bottom + 14}" ${AXIS_TEXT} text-anchor="middle" data-band="${escapeHtml(band)}">${escapeHtml(band)}</text>`
    );
  });
  return svg('latency distribution', frame(most, 'calls', 'time to answer') + bars.join(''));
}

/** The models the records went to, as the calls named them, with how many each took. */
function modelsUsed(manifest: ReportManifest): string {
  const models = manifest.stats?.perModel ?? [];
  if (models.length === 0)
    return `<div class="models" data-models>model ${escapeHtml(manifest.model)} (no record reached it)</div>`;
  const unknown = new Set((manifest.unknownModels ?? []).map((model) => model.modelId));
  const named = models.map(
    (model) =>
      `${escapeHtml(model.modelId)} (${number(model.records)}${unknown.has(model.modelId) ? ', not in the catalog: cost and context window unknown' : ''})`,
  );
  return `<div class="models" data-models>${models.length === 1 ? 'model' : 'models'} ${named.join(', ')}</div>`;
}

/** For a job that was canceled: why, and where it stood. */
function cancelPoint(manifest: ReportManifest): string {
  if (manifest.status !== 'canceled') return '';
  const finished = manifest.successRecordCount + manifest.errorRecordCount;
  const reason = manifest.reason === undefined ? 'on request' : `because ${escapeHtml(manifest.reason)}`;
  return `<p class="canceled" data-cancel-point>Canceled ${reason}: ${number(finished)} of ${number(manifest.totalRecordCount)} records had finished; ${number(manifest.canceledRecordCount ?? 0)} were canceled.</p>`;
}
