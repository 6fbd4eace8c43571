/**
 * `npm run bench:lanes`: what the same 10,000-record file costs and takes in each lane, on the local cloud.
 * The stand-in answers on demand at a tenth of its realistic latency, and runs batch jobs on its own
 * turnaround (validation, scheduling, 2 ms a record, also at a tenth), failing 1% of batch records and
 * leaving 0.5% out, so the batch lane's redrive is part of the figures. For each lane: wall time, the
 * estimated cost at catalog prices (batch records at the batch price), records each lane answered, records
 * redriven, batch jobs run. A 60-record file under `auto` shows the small-file case. Written to
 * bench/results/lanes.json. Real Bedrock batch jobs take hours, not seconds: the times compare the lanes'
 * own overheads, the costs compare what Bedrock would bill.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { type LocalCloud, startLocalCloud } from '../local/cloud/local-cloud.ts';
import { type LocalPipeline, startLocalPipeline } from '../local/pipeline/local-pipeline.ts';
import { timedRun } from './timed-run.ts';

const RECORDS = 10_000;
const TOKENS_PER_MINUTE = 4_000_000;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';

function promptsFile(count: number): string {
  return Array.from({ length: count }, (_, index) =>
    JSON.stringify({
      id: `ticket-${index}`,
      prompt: `Summarise support ticket ${index}: the nightly export stopped after the upgrade and retries did not help.`,
      max_tokens: 256,
    }),
  ).join('\n');
}

interface LaneRun {
  readonly lane: string;
  readonly records: number;
  readonly seconds: number;
  readonly estimatedCostUsd: number;
  readonly ranAs: string;
  readonly batchJobs: number;
  readonly answeredBy: Readonly<Record<string, number>>;
  readonly recordsRedriven: number;
  readonly succeeded: number;
}

async function main(): Promise<void> {
  const cloud = await startLocalCloud({
    bedrock: {
      speed: 0.1,
      quota: { tokensPerMinute: TOKENS_PER_MINUTE },
      batch: { faults: { recordErrorRate: 0.01, missingRecordRate: 0.005 } },
    },
  });
  const pipeline = await startLocalPipeline(cloud, {
    tokensPerMinute: TOKENS_PER_MINUTE,
    worker: { concurrency: 8 },
    sweep: { intervalMs: 2_000, resumeAfterMinutes: 30 },
  });
  try {
    const runs = [
      await runLane(cloud, pipeline, 'on-demand', RECORDS, {}),
      await runLane(cloud, pipeline, 'batch', RECORDS, { lane: 'batch' }),
      await runLane(cloud, pipeline, 'auto', RECORDS, { lane: 'auto' }),
      await runLane(cloud, pipeline, 'auto-small', 60, { lane: 'auto' }),
    ];
    const [onDemand, batch] = runs;
    const costRatio =
      onDemand === undefined || batch === undefined
        ? null
        : Math.round((batch.estimatedCostUsd / onDemand.estimatedCostUsd) * 1000) / 1000;
    const result = {
      benchmark: 'lanes',
      measuredAt: new Date().toISOString(),
      node: process.version,
      setup: {
        records: RECORDS,
        tokensPerMinute: TOKENS_PER_MINUTE,
        standInSpeed: 0.1,
        batchFaults: { recordErrorRate: 0.01, missingRecordRate: 0.005 },
      },
      runs,
      batchCostOverOnDemand: costRatio,
    };
    await mkdir('bench/results', { recursive: true });
    await writeFile('bench/results/lanes.json', `${JSON.stringify(result, null, 2)}\n`);
    for (const entry of runs)
      process.stdout.write(
        `${entry.lane.padEnd(10)} ${String(entry.records).padStart(6)} records  ${String(entry.seconds).padStart(6)} s  $${entry.estimatedCostUsd}  ran as ${entry.ranAs}, ${entry.batchJobs} batch jobs, ${entry.recordsRedriven} redriven\n`,
      );
    process.stdout.write(`batch cost / on-demand cost: ${costRatio}\n`);
  } finally {
    await pipeline.stop();
    await cloud.stop();
  }
}

/** A file of `count` records with these options, through the pipeline. */
async function runLane(
  cloud: LocalCloud,
  pipeline: LocalPipeline,
  name: string,
  count: number,
  metadata: Record<string, string>,
): Promise<LaneRun> {
  const file = { key: `inputs/${name}.jsonl`, body: promptsFile(count), metadata };
  const { seconds, manifest } = await timedRun(cloud, pipeline, file);
  const answeredBy = Object.fromEntries(
    Object.entries(manifest.lanes).map(([lane, totals]) => [lane, totals.records]),
  );
  return {
    lane: metadata.lane ?? 'on-demand',
    records: count,
    seconds,
    estimatedCostUsd: manifest.estimatedCostUsd,
    ranAs: manifest.lane,
    batchJobs: manifest.batchJobs?.length ?? 0,
    answeredBy,
    recordsRedriven: manifest.lane === 'batch' ? (answeredBy.onDemand ?? 0) : 0,
    succeeded: manifest.successRecordCount,
  };
}

await main();
