import { ServiceQuotasSource } from '../../functions/adapters/service-quotas.ts';
import { localJobDefaults } from '../../local/pipeline/local-pipeline.ts';
import { type JobProgress, progressCounts, runLocalJob } from '../../local/run-job.ts';
import { parseDeadlineHours } from '../../shared/batch/lane.ts';
import { catalogInUse, endpointKinds } from '../../shared/catalog/catalog.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../../shared/config.ts';
import { lanes } from '../../shared/contract/lanes.ts';
import { serviceTiers } from '../../shared/contract/service-tiers.ts';
import type { JobSettings } from '../../shared/core/model.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import type { CacheSummary, TierSummary } from '../../shared/output/manifest.ts';
import { jobSettingsFrom } from '../../shared/pipeline/job.ts';
import { parseEndpoints, poolName, poolsOfSettings, type QuotaPool } from '../../shared/quotas/pools.ts';
import { type QuotaReading, readPoolQuotas } from '../../shared/quotas/service-quotas.ts';
import { nonNegativeNumber, positiveInteger } from '../arguments.ts';
import { requireAwsCredentials } from '../aws-credentials.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { JobFailedError, UsageError } from '../errors.ts';
import { checkInputFile, checkOutputDirectory } from '../input-file.ts';
import { jsonOption, modelOptions, outOption, quotaOptions, speedOption } from '../options.ts';
import { bar, type Terminal } from '../terminal.ts';
import { count, duration, number, tierSentence, usd } from '../words.ts';
import { quotaShare, sourceRegions } from './quotas.ts';

export const RUN_COMMAND = {
  name: 'run',
  summary: 'run a file on this machine: local queues and storage, the Bedrock stand-in or real Bedrock',
  description:
    'Runs a file of prompts through the whole pipeline on this machine (a local cloud started for the run) and ' +
    'writes <file>.out (one result a line, in input order) and <file>.manifest.json.out to --out. With ' +
    '--bedrock aws the calls go to real Bedrock with your default AWS credentials; everything else stays local.',
  positionals: [
    { name: '<file.jsonl>', help: 'prompts, one JSON object a line (.jsonl, or .jsonl.gz)', path: true },
  ],
  options: {
    ...outOption('where the output and manifest go'),
    ...modelOptions,
    ...quotaOptions,
    ...speedOption,
    ...jsonOption,
  },
  examples: [
    'bedrock-batch run prompts.jsonl --model haiku-4.5',
    'bedrock-batch run prompts.jsonl --bedrock aws --quota-share 0.5',
  ],
} as const satisfies CommandSpec;

const cacheChoices = ['auto', 'off'] as const;

export function fileMetadata(values: {
  model?: string;
  endpoint?: string;
  endpoints?: string;
  regions?: string;
  'max-tokens'?: string;
  lane?: string;
  deadline?: string;
  cache?: string;
  tier?: string;
  'max-error-rate'?: string;
  'max-cost'?: string;
}): Record<string, string> {
  if (values['max-tokens'] !== undefined) positiveInteger('max-tokens', values['max-tokens'], 0);
  if (values.endpoint !== undefined && !(endpointKinds as readonly string[]).includes(values.endpoint)) {
    throw new UsageError(
      `--endpoint ${values.endpoint} is not an endpoint.`,
      `Use one of ${endpointKinds.join(', ')}.`,
    );
  }
  if (values.lane !== undefined && !(lanes as readonly string[]).includes(values.lane)) {
    throw new UsageError(`--lane ${values.lane} is not a lane.`, `Use one of ${lanes.join(', ')}.`);
  }
  if (values.deadline !== undefined && parseDeadlineHours(values.deadline) === undefined) {
    throw new UsageError(
      `--deadline ${values.deadline} is not a duration.`,
      'Use one such as 30m, 6h or 2d.',
    );
  }
  if (values.tier !== undefined && !(serviceTiers as readonly string[]).includes(values.tier)) {
    throw new UsageError(
      `--tier ${values.tier} is not a service tier.`,
      `Use one of ${serviceTiers.join(', ')}.`,
    );
  }
  if (values.cache !== undefined && !(cacheChoices as readonly string[]).includes(values.cache)) {
    throw new UsageError(
      `--cache ${values.cache} is not a caching choice.`,
      `Use auto (cache the prefix the file's records share) or off.`,
    );
  }
  const given = Object.entries({
    model: values.model,
    endpoint: values.endpoint,
    // Lists take `+` in object metadata: the CLI's --metadata splits its pairs at commas.
    endpoints:
      values.endpoints === undefined ? undefined : parseEndpoints(values.endpoints, '--endpoints').join('+'),
    regions: values.regions === undefined ? undefined : sourceRegions(values).join('+'),
    'max-tokens': values['max-tokens'],
    lane: values.lane,
    deadline: values.deadline,
    cache: values.cache,
    tier: values.tier,
    'max-error-rate': values['max-error-rate'],
    'max-cost': values['max-cost'],
  }).filter((entry): entry is [string, string] => entry[1] !== undefined);
  return Object.fromEntries(given);
}

/**
 * The settings a local run would give the file, checked before anything starts: model, endpoint and region
 * together, with the catalog's fixes.
 */
export function checkModelChoice(metadata: Record<string, string>, regions: readonly string[]): JobSettings {
  try {
    return jobSettingsFrom(metadata, localJobDefaults(regions));
  } catch (error) {
    if (error instanceof ConfigurationError) {
      throw new UsageError(
        error.problems.map((problem) => problem.replace(/^file options? /, '--')).join('; '),
      );
    }
    throw error;
  }
}

export async function runCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, RUN_COMMAND);
  const { quotaNote, ...job } = await checkRunArguments(values, positionals[0]);
  const started = Date.now();
  const log = (line: string) => {
    term.endStatus();
    if (values.json) term.err(`${line}\n`);
    else term.out(`${line}\n`);
  };
  if (quotaNote !== undefined) log(quotaNote);
  const result = await runLocalJob({
    ...job,
    outDir: values.out,
    log,
    onProgress: values.json ? () => {} : progressReporter(term),
  });
  term.endStatus();
  const manifest = result.manifest as Record<string, number | string>;
  if (values.json) term.out(`${JSON.stringify(manifest, null, 2)}\n`);
  else
    term.out(summary(manifest, result, Date.now() - started, term) + laneNote(job.metadata.lane, manifest));
  if (manifest.status !== 'completed') {
    // A reason is a sentence of its own, with its full stop.
    const why = manifest.reason === undefined ? '.' : `: ${manifest.reason}`;
    throw new JobFailedError(`The job ended ${manifest.status}${why}`);
  }
  return 0;
}

function isBedrockChoice(value: string): value is 'local' | 'aws' {
  return value === 'local' || value === 'aws';
}

/** Everything is checked before the local cloud starts: a mistake costs no time and loses no results. */
async function checkRunArguments(
  values: {
    region: string;
    out: string;
    bedrock: string;
    speed?: string | undefined;
    'quota-tpm'?: string | undefined;
    'quota-share'?: string | undefined;
  } & Parameters<typeof fileMetadata>[0],
  input: string | undefined,
) {
  const file = await checkInputFile(input, RUN_COMMAND.name);
  const { bedrock } = values;
  if (!isBedrockChoice(bedrock)) {
    throw new UsageError(
      `--bedrock ${bedrock} is not a choice.`,
      'Use local (the stand-in) or aws (real Bedrock).',
    );
  }
  const regions = sourceRegions(values);
  const [region = values.region] = regions;
  const metadata = fileMetadata(values);
  const settings = checkModelChoice(metadata, regions);
  const speed = nonNegativeNumber('speed', values.speed, 1);
  const share = quotaShare(values['quota-share']);
  const configured =
    values['quota-tpm'] === undefined ? undefined : positiveInteger('quota-tpm', values['quota-tpm'], 0);
  await checkOutputDirectory(values.out);
  const base = { file, region, regions, metadata, speed, bedrock, quotaShare: share };
  const pools = poolsOfSettings(settings);
  if (bedrock === 'local') {
    return {
      ...base,
      pools,
      ...(configured === undefined ? {} : { tokensPerMinute: configured }),
      quotaNote: undefined,
    };
  }
  await requireAwsCredentials(region);
  return { ...base, pools, ...(await accountQuotas(pools, configured, share)) };
}

/**
 * The quotas of a run on real Bedrock: the one the user gave, or the one Service Quotas applies to the
 * account for each pool the file may use; and a line per pool that says which, and what the share spends.
 * A pool with no quota is left out, with a line that says why; with none left, the run cannot start.
 */
export async function accountQuotas(
  pools: readonly QuotaPool[],
  configured: number | undefined,
  share: number,
): Promise<{ tokensPerMinute: number; quotas: QuotaReading; quotaNote: string }> {
  const source = new ServiceQuotasSource();
  try {
    const reading = await readPoolQuotas(pools, source, {
      configured,
      fallback: DEFAULT_TOKENS_PER_MINUTE,
      share,
    });
    const [home] = reading.quotas;
    const [refused] = reading.leftOut;
    if (home === undefined) {
      throw new UsageError(
        `${refused === undefined ? 'No pool' : poolName(refused.pool)} cannot be used: ${refused?.reason ?? 'it has no quota'}`,
        'Choose another endpoint or region with --endpoints or --regions.',
      );
    }
    const lines = reading.quotas.map((quota) => {
      const from =
        quota.origin === 'service-quotas'
          ? `Service Quotas: "${quota.matched[0]}"`
          : quota.origin === 'configured'
            ? '--quota-tpm'
            : (quota.warning ?? quota.origin);
      return `Quota: ${quota.tokensPerMinute} tokens a minute for ${poolName(quota.pool)} (${from}); spending ${quota.usableTokensPerMinute}.`;
    });
    const leftOut = reading.leftOut.map(({ pool, reason }) => `Left out: ${poolName(pool)}: ${reason}`);
    return {
      tokensPerMinute: home.tokensPerMinute,
      quotas: reading,
      quotaNote: [...lines, ...leftOut].join('\n'),
    };
  } finally {
    source.destroy();
  }
}

function summary(
  manifest: Record<string, unknown> & { cache?: CacheSummary; tiers?: TierSummary },
  paths: { outputPath: string; manifestPath: string },
  elapsedMs: number,
  term: Terminal,
): string {
  const failed = Number(manifest.errorRecordCount);
  const failedText = `${number(failed)} failed`;
  return (
    `${term.bold('Done')} in ${duration(elapsedMs / 1000)}: ${count(Number(manifest.totalRecordCount), 'record')}, ` +
    `${term.green(`${number(Number(manifest.successRecordCount))} succeeded`)}, ${failed > 0 ? term.red(failedText) : failedText}; ` +
    `${number(Number(manifest.inputTokenCount))} input and ${number(Number(manifest.outputTokenCount))} output tokens; estimated cost ${usd(Number(manifest.estimatedCostUsd), 6)}${unpricedNote(manifest)}\n` +
    cacheLine(manifest.cache) +
    unknownModelLines(manifest) +
    (tierSentence(manifest.tiers) === undefined ? '' : `  service tier: ${tierSentence(manifest.tiers)}\n`) +
    (typeof manifest.inputNotice === 'string' ? `  ${term.red('note')}: ${manifest.inputNotice}\n` : '') +
    `  ${paths.outputPath}\n  ${paths.manifestPath}\n`
  );
}

/** The records whose cost the estimate leaves out, their model having no known price. */
function unpricedNote(manifest: Record<string, unknown>): string {
  const { unpriced } = manifest as { unpriced?: { records?: unknown } };
  const records = Number(unpriced?.records ?? 0);
  return records > 0 ? ` (without ${count(records, 'record')} of a model with no known price: unknown)` : '';
}

/** The models the records went to that the catalog does not list: what is unknown of them. */
function unknownModelLines(manifest: Record<string, unknown>): string {
  const { unknownModels } = manifest as { unknownModels?: Array<{ modelId: string; records: number }> };
  return (unknownModels ?? [])
    .map(
      ({ modelId, records }) =>
        `  not in the catalog: ${modelId} (${count(records, 'record')}): its cost and context window are unknown\n`,
    )
    .join('');
}

/** Says so when a file asked for the batch lane and ran on demand, and why when the reason is its size. */
function laneNote(asked: string | undefined, manifest: Record<string, number | string>): string {
  if (asked === undefined || asked === 'on-demand' || manifest.lane !== 'on-demand') return '';
  const records = Number(manifest.totalRecordCount);
  const minimum = catalogInUse().batch.minimumRecordsPerJob;
  const why =
    records < minimum
      ? `a batch job needs at least ${number(minimum)} records and the file has ${number(records)}`
      : 'its deadline is too short for batch inference, or batch jobs could not run';
  return `  lane: --lane ${asked} ran on demand: ${why}\n`;
}

/** What the prompt cache did, when it was used: hit rate, tokens read and written, the saving (or the cost). */
function cacheLine(cache: CacheSummary | undefined): string {
  if (cache?.hitRate == null) return '';
  const effect =
    cache.savingUsd < 0
      ? `costing ${usd(-cache.savingUsd, 6)} more than no cache (too few records read the prefix it wrote)`
      : `saving ${usd(cache.savingUsd, 6)} against no cache`;
  return (
    `  prompt cache: ${(cache.hitRate * 100).toFixed(1)}% of ${count(cache.hitRecords + cache.missRecords, 'record')} read it ` +
    `(${number(cache.readTokens)} tokens read, ${number(cache.writeTokens)} written), ${effect}\n`
  );
}

/** A wait for tokens shorter than this is the quota's steady pace, not worth a word. */
const WAIT_SAID_FROM_SECONDS = 5;

/** `waiting for tokens: 5 records to go, tokens in about 67 s` while the quota holds the job up. */
export function waitingWords(progress: Pick<JobProgress, 'job' | 'tokenWaitSeconds'>): string | undefined {
  const { job, tokenWaitSeconds: seconds = 0 } = progress;
  if (job === undefined || seconds < WAIT_SAID_FROM_SECONDS) return undefined;
  const toGo = job.totalRecords === undefined ? undefined : job.totalRecords - job.doneRecords;
  return `waiting for tokens: ${toGo === undefined ? '' : `${count(toGo, 'record')} to go, `}tokens in about ${duration(seconds)}`;
}

/** Off a terminal a line is printed when the counts change, and at least this often while they do not. */
const UNCHANGED_LINE_EVERY_MS = 10_000;

/**
 * The run's progress: on a terminal a bar redrawn in place; elsewhere (a log, CI) a line when the counts
 * change, and a line now and then while they do not, so a quiet job is seen to be alive.
 */
export function progressReporter(term: Terminal): (progress: JobProgress) => void {
  let lastCounts = '';
  let lastPrintedMs = Number.NEGATIVE_INFINITY;
  return (progress) => {
    const counts = progressCounts(progress);
    if (!term.interactive) {
      if (counts === lastCounts && progress.elapsedMs - lastPrintedMs < UNCHANGED_LINE_EVERY_MS) return;
      lastCounts = counts;
      lastPrintedMs = progress.elapsedMs;
    }
    const { job } = progress;
    const done = job?.doneRecords ?? 0;
    const total = job?.totalRecords;
    const rate = done / Math.max(1, progress.elapsedMs / 1000);
    const eta =
      total === undefined || rate === 0 || done >= total ? '' : ` · ETA ${duration((total - done) / rate)}`;
    const time = job === undefined ? '' : ` · ${(progress.elapsedMs / 1000).toFixed(1)} s`;
    const waiting = waitingWords(progress);
    term.status(
      `${term.interactive ? `${bar(done, total)} ` : ''}${counts}${waiting === undefined ? '' : ` · ${waiting}`}${eta}${time}`,
    );
  };
}
