import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createGunzip } from 'node:zlib';
import { quotaSeconds } from '../../shared/budget/throughput.ts';
import {
  findSharedPrefixes,
  leadingPrefixes,
  type SharedPrefix,
} from '../../shared/caching/shared-prefix.ts';
import type { CatalogModel } from '../../shared/catalog/catalog.ts';
import { defaultCatalog, type EndpointKind } from '../../shared/catalog/catalog.ts';
import { DEFAULT_TOKENS_PER_MINUTE, OUTPUT_TOKEN_BURNDOWN } from '../../shared/config.ts';
import { costOfRequest, nanoUsdToUsd } from '../../shared/cost/cost.ts';
import { PipelineError } from '../../shared/errors.ts';
import { DEFAULT_MAX_ERROR_RATE, ERROR_RATE_FROM_RECORDS } from '../../shared/input/error-rate.ts';
import { isCompressedInput } from '../../shared/input/file-check.ts';
import { InMemoryRecordIdRegistry, readRecords } from '../../shared/input/read-records.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import { isZlibError } from '../../shared/pipeline/decompress.ts';
import type { JobSettings } from '../../shared/pipeline/model.ts';
import { choiceOf, poolName, poolsFor } from '../../shared/quotas/pools.ts';
import { buildInvocation, type Invocation } from '../../shared/request/build-request.ts';
import { positiveInteger } from '../arguments.ts';
import { requireAwsCredentials } from '../aws-credentials.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { UsageError } from '../errors.ts';
import { checkInputFile } from '../input-file.ts';
import { jsonOption, modelOptions, quotaOptions } from '../options.ts';
import type { Terminal } from '../terminal.ts';
import { quotaShare, sourceRegions } from './quotas.ts';
import { accountQuotas, checkModelChoice, fileMetadata } from './run.ts';

export const PLAN_COMMAND = {
  name: 'plan',
  summary: 'check a file and say what a run would cost and how long the quota needs, calling nothing',
  description:
    'Reads every line of a file and calls no model: the errors by line, token estimates, the records that need ' +
    'the 1M window, the cost range, the prefix the records share and what caching saves, and the time the ' +
    'quota needs for the file (with --bedrock aws, at the quotas Service Quotas applies to your account).',
  positionals: [
    { name: '<file.jsonl>', help: 'prompts, one JSON object a line (.jsonl, or .jsonl.gz)', path: true },
  ],
  options: { ...modelOptions, ...quotaOptions, ...jsonOption },
  examples: ['bedrock-batch plan prompts.jsonl --model sonnet-4.5 --quota-tpm 200000'],
} as const satisfies CommandSpec;

interface PlanError {
  readonly line: number;
  readonly recordId: string | undefined;
  readonly code: string;
  readonly message: string;
}

/**
 * Like `terraform plan`: reads every line, makes no call, and reports what a run would do: the errors by
 * line, token estimates, which records need the 1M window, and the cost range on the global and regional
 * endpoints (low: the low input estimate and no output; high: the high estimate and every max_tokens used).
 */
export async function planCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(args, PLAN_COMMAND);
  const file = await checkInputFile(positionals[0]);
  const job = checkModelChoice(fileMetadata(values), sourceRegions(values));
  const quotas = await planQuotas(job, values);
  const plan = await planFile(file, job, quotas);
  if (values.json) term.out(`${JSON.stringify(plan, null, 2)}\n`);
  else printPlan(plan, term);
  return 0;
}

type Plan = Awaited<ReturnType<typeof planFile>>;

/** A pool's quota as a plan counts it: what the pipeline would spend of it a minute. */
interface PlannedPool {
  readonly pool: string;
  readonly tokensPerMinute: number;
}

/** The quotas a plan times the file by, and the pools a run would leave out. */
interface PlanQuotas {
  readonly pools: readonly PlannedPool[];
  readonly leftOut: ReadonlyArray<{ readonly pool: string; readonly reason: string }>;
}

/**
 * Each pool at the quota the user gave (or the default) with `--bedrock local`; with `--bedrock aws`, at the
 * share of what Service Quotas applies to the account, pools with no quota left out and said why. Pools
 * whose region does not offer the model are left out either way.
 */
async function planQuotas(
  job: JobSettings,
  values: { bedrock: string; 'quota-tpm'?: string | undefined; 'quota-share'?: string | undefined },
): Promise<PlanQuotas> {
  const { pools, leftOut } = poolsFor(resolveModel(job).model, choiceOf(job));
  const unoffered = leftOut.map((pool) => ({ pool: `${pool.region} ${pool.endpoint}`, reason: pool.reason }));
  const configured =
    values['quota-tpm'] === undefined ? undefined : positiveInteger('quota-tpm', values['quota-tpm'], 0);
  if (values.bedrock !== 'aws') {
    if (values.bedrock !== 'local') {
      throw new UsageError(`--bedrock ${values.bedrock} is not a choice.`, 'Use local or aws.');
    }
    const tokensPerMinute = configured ?? DEFAULT_TOKENS_PER_MINUTE;
    return { pools: pools.map((pool) => ({ pool: poolName(pool), tokensPerMinute })), leftOut: unoffered };
  }
  await requireAwsCredentials(job.region);
  const { quotas } = await accountQuotas(pools, configured, quotaShare(values['quota-share']));
  return {
    pools: quotas.quotas.map((quota) => ({
      pool: poolName(quota.pool),
      tokensPerMinute: quota.usableTokensPerMinute,
    })),
    leftOut: [...unoffered, ...quotas.leftOut.map(({ pool, reason }) => ({ pool: poolName(pool), reason }))],
  };
}

/** Every line of the file, validated and built into its call as a run would, and nothing sent. */
async function planFile(file: string, job: JobSettings, quotas: PlanQuotas) {
  try {
    return await planLines(file, job, quotas);
  } catch (error) {
    if (!isZlibError(error)) throw error;
    throw new UsageError(
      `${path.basename(file)} is not valid gzip data (${(error as Error).message}).`,
      'Compress the JSONL file with gzip, or give it uncompressed as .jsonl.',
    );
  }
}

/** The file's lines, decompressed as the pipeline does a .jsonl.gz input, into the plan. */
async function planLines(file: string, job: JobSettings, quotas: PlanQuotas) {
  const tally = new PlanTally(job.maxErrorRate ?? DEFAULT_MAX_ERROR_RATE);
  const raw = createReadStream(file);
  const input = isCompressedInput(file) ? raw.pipe(createGunzip()) : raw;
  if (input !== raw) raw.on('error', (error) => input.destroy(error));
  for await (const { result } of readRecords(input, {
    maxLineBytes: defaultCatalog.requestBodyLimitBytes,
    registry: new InMemoryRecordIdRegistry(),
  })) {
    tally.records += 1;
    if (!result.ok) {
      const { lineNumber, recordId, code, message } = result.error;
      tally.errors.push({ line: lineNumber, recordId, code, message });
      tally.invalidLine(lineNumber);
      continue;
    }
    try {
      const invocation = buildInvocation(result.record, job);
      tally.add(invocation, result.record.lineNumber);
      if (job.cache !== 'off') tally.prefixes.add(invocation, result.record.body);
    } catch (error) {
      if (!(error instanceof PipelineError)) throw error;
      const { lineNumber, recordId } = result.record;
      tally.errors.push({ line: lineNumber, recordId, code: error.code, message: error.message });
    }
  }
  return tally.plan(file, quotas);
}

/** What a plan adds up as it reads. */
class PlanTally {
  records = 0;
  readonly errors: PlanError[] = [];
  /** The line by which a run would stop reading, its records too often invalid (see errorRateProblem). */
  stopsNearLine: number | undefined;
  private invalidLines = 0;

  constructor(private readonly maxErrorRate: number) {}
  readonly prefixes = new PrefixTally();
  private readonly longContextLines: number[] = [];
  private readonly models: Record<string, number> = {};
  private readonly cost = { global: { low: 0, high: 0 }, regional: { low: 0, high: 0 } };
  private inputLow = 0;
  private inputHigh = 0;
  private maxOutput = 0;

  /** Counts a line the enqueue step would refuse, and notes where the file goes over its error rate. */
  invalidLine(lineNumber: number): void {
    this.invalidLines += 1;
    const tooMany =
      this.records >= ERROR_RATE_FROM_RECORDS && this.invalidLines > this.maxErrorRate * this.records;
    if (tooMany) this.stopsNearLine ??= lineNumber;
  }

  add(invocation: Invocation, lineNumber: number): void {
    this.inputLow += invocation.estimate.lower;
    this.inputHigh += invocation.estimate.upper;
    this.maxOutput += invocation.maxTokens;
    this.models[invocation.modelId] = (this.models[invocation.modelId] ?? 0) + 1;
    if (invocation.longContext) this.longContextLines.push(lineNumber);
    const model = invocation.resolved.model;
    for (const endpoint of ['global', 'regional'] as const satisfies readonly EndpointKind[]) {
      const { lower, upper } = invocation.estimate;
      this.cost[endpoint].low += costOfRequest(
        { input_tokens: lower, output_tokens: 0 },
        model,
        endpoint,
      ).total;
      this.cost[endpoint].high += costOfRequest(
        { input_tokens: upper, output_tokens: invocation.maxTokens },
        model,
        endpoint,
      ).total;
    }
  }

  plan(file: string, quotas: PlanQuotas) {
    const { cost } = this;
    const quotaTokens = {
      low: this.inputLow,
      high: this.inputHigh + this.maxOutput * OUTPUT_TOKEN_BURNDOWN,
    };
    const secondsAt = (tokensPerMinute: number) => ({
      low: Math.round(quotaSeconds(quotaTokens.low, tokensPerMinute)),
      high: Math.round(quotaSeconds(quotaTokens.high, tokensPerMinute)),
    });
    // The pools together spend their quotas at once: as one quota of their sum.
    const together = quotas.pools.reduce((sum, pool) => sum + pool.tokensPerMinute, 0);
    return {
      file,
      records: this.records,
      valid: this.records - this.errors.length,
      errors: this.errors,
      maxErrorRate: this.maxErrorRate,
      ...(this.stopsNearLine === undefined ? {} : { stopsNearLine: this.stopsNearLine }),
      models: this.models,
      inputTokens: { low: this.inputLow, high: this.inputHigh },
      maxOutputTokens: this.maxOutput,
      longContextRecords: this.longContextLines,
      estimatedCostUsd: {
        global: { low: nanoUsdToUsd(cost.global.low), high: nanoUsdToUsd(cost.global.high) },
        regional: { low: nanoUsdToUsd(cost.regional.low), high: nanoUsdToUsd(cost.regional.high) },
      },
      pools: quotas.pools.map(({ pool }) => pool),
      poolsLeftOut: quotas.leftOut,
      atQuota: {
        tokensPerMinute: together,
        pools: quotas.pools.length,
        quotaTokens,
        seconds: secondsAt(together),
        perPool: quotas.pools.map((pool) => ({ ...pool, seconds: secondsAt(pool.tokensPerMinute) })),
      },
      sharedPrefixes: this.prefixes.summary(),
      pricesCheckedOn: defaultCatalog.pricesCheckedOn,
    };
  }
}

/** Records the pipeline looks at to find a file's shared prefix, as the enqueue step does: its first ones. */
const PREFIX_SAMPLE = 20;

/**
 * The prefix a file's records share, found as a run finds it (in its first records), the records that
 * start with it, and what caching it saves at global prices: the prefix written once at the write rate and
 * read by the others at the read rate, instead of paid by each at the input rate.
 */
class PrefixTally {
  private sample: Array<{ modelId: string; body: MessagesBody; model: CatalogModel }> | undefined = [];
  private found: Array<SharedPrefix & { model: CatalogModel; sharing: number }> = [];

  add(invocation: Invocation, body: MessagesBody): void {
    const entry = { modelId: invocation.modelId, body, model: invocation.resolved.model };
    if (this.sample === undefined) {
      this.count(entry);
      return;
    }
    this.sample.push(entry);
    if (this.sample.length >= PREFIX_SAMPLE) this.decide();
  }

  summary() {
    if (this.sample !== undefined) this.decide();
    return this.found.map(({ modelId, blocks, tokens, sharing, model }) => {
      const { input, cacheWrite, cacheRead } = model.prices.standard;
      const uncached = sharing * tokens * input;
      const cached = tokens * cacheWrite + Math.max(0, sharing - 1) * tokens * cacheRead;
      return {
        modelId,
        blocks,
        tokens,
        records: sharing,
        estimatedSavingUsd: Math.round(((uncached - cached) / 1_000_000) * 1_000_000) / 1_000_000,
      };
    });
  }

  private decide(): void {
    const sample = this.sample ?? [];
    this.sample = undefined;
    const minimum = (modelId: string) =>
      sample.find((entry) => entry.modelId === modelId)?.model.minCacheablePrefixTokens ?? Infinity;
    this.found = findSharedPrefixes(sample, minimum).map((prefix) => ({
      ...prefix,
      model: sample.find((entry) => entry.modelId === prefix.modelId)?.model as CatalogModel,
      sharing: 0,
    }));
    for (const entry of sample) this.count(entry);
  }

  private count(entry: { modelId: string; body: MessagesBody }): void {
    const prefix = this.found.find((candidate) => candidate.modelId === entry.modelId);
    if (prefix === undefined) return;
    const leading = leadingPrefixes(entry.body).prefixes[prefix.blocks - 1];
    if (leading?.fingerprint === prefix.fingerprint) prefix.sharing += 1;
  }
}

function printPlan(plan: Plan, term: Terminal): void {
  const { errors, estimatedCostUsd: cost } = plan;
  const count = (value: number) => value.toLocaleString('en-US');
  term.out(
    `${term.bold(`Plan for ${plan.file}`)}: ${plan.records} records, ${plan.valid} valid, ${errors.length} with errors\n`,
  );
  for (const error of errors)
    term.out(`  ${term.red(`line ${error.line}`)} ${error.code}: ${error.message}\n`);
  if (plan.stopsNearLine !== undefined)
    term.out(
      `  ${term.red('too many invalid lines')}: a run stops reading near line ${plan.stopsNearLine} and fails the job (max-error-rate ${plan.maxErrorRate * 100}%)\n`,
    );
  for (const [modelId, records] of Object.entries(plan.models))
    term.out(`  ${records} records to ${modelId}\n`);
  term.out(
    `  input tokens ${count(plan.inputTokens.low)} to ${count(plan.inputTokens.high)}, output at most ${count(plan.maxOutputTokens)}\n`,
  );
  if (plan.longContextRecords.length > 0)
    term.out(`  1M context for lines ${plan.longContextRecords.join(', ')}\n`);
  for (const prefix of plan.sharedPrefixes)
    term.out(
      `  shared prefix: about ${count(prefix.tokens)} tokens in ${prefix.records} records to ${prefix.modelId}; caching saves about $${prefix.estimatedSavingUsd} (global prices)\n`,
    );
  term.out(
    `  estimated cost: global $${cost.global.low} to $${cost.global.high}, ` +
      `regional $${cost.regional.low} to $${cost.regional.high} (prices of ${plan.pricesCheckedOn})\n`,
  );
  const { atQuota } = plan;
  if (atQuota.perPool.length > 1) {
    for (const pool of atQuota.perPool)
      term.out(
        `  quota pool ${pool.pool}: ${count(pool.tokensPerMinute)} tokens a minute, ${duration(pool.seconds.low)} to ${duration(pool.seconds.high)} alone\n`,
      );
  }
  for (const { pool, reason } of plan.poolsLeftOut) term.out(`  left out: ${pool}: ${reason}\n`);
  const all = atQuota.pools > 1 ? ` in all ${atQuota.pools} pools` : '';
  term.out(
    `  at ${count(atQuota.tokensPerMinute)} tokens a minute${all}: ${duration(atQuota.seconds.low)} to ${duration(atQuota.seconds.high)} ` +
      `of quota (${count(atQuota.quotaTokens.low)} to ${count(atQuota.quotaTokens.high)} quota tokens: input alone, to every max_tokens used at ${OUTPUT_TOKEN_BURNDOWN} a token)\n`,
  );
}

/** Seconds as a person reads them: seconds under two minutes, minutes under two hours, hours above. */
function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3_600).toFixed(1)} h`;
}
