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
import { catalogInUse, type EndpointKind, pricesAt, takesTier } from '../../shared/catalog/catalog.ts';
import { DEFAULT_TOKENS_PER_MINUTE, OUTPUT_TOKEN_BURNDOWN } from '../../shared/config.ts';
import { DEFAULT_SERVICE_TIER, type ServiceTier } from '../../shared/contract/service-tiers.ts';
import type { JobSettings } from '../../shared/core/model.ts';
import { costOfRequest, nanoUsdToUsd } from '../../shared/cost/cost.ts';
import { PipelineError } from '../../shared/errors.ts';
import { DEFAULT_MAX_ERROR_RATE, ERROR_RATE_FROM_RECORDS } from '../../shared/input/error-rate.ts';
import { isCompressedInput } from '../../shared/input/file-check.ts';
import { InMemoryRecordIdRegistry, readRecords } from '../../shared/input/read-records.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import { isZlibError } from '../../shared/pipeline/decompress.ts';
import { choiceOf, poolName, poolsFor } from '../../shared/quotas/pools.ts';
import { buildInvocation, type Invocation } from '../../shared/request/build-request.ts';
import { positiveInteger } from '../arguments.ts';
import { requireAwsCredentials } from '../aws-credentials.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { UsageError } from '../errors.ts';
import { checkInputFile } from '../input-file.ts';
import { jsonOption, modelOptions, quotaOptions } from '../options.ts';
import type { Terminal } from '../terminal.ts';
import { count, duration, number, usd } from '../words.ts';
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
  const file = await checkInputFile(positionals[0], PLAN_COMMAND.name);
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
  const minuteTokens = Math.min(...quotas.pools.map((pool) => pool.tokensPerMinute));
  const tally = new PlanTally(job.maxErrorRate ?? DEFAULT_MAX_ERROR_RATE, minuteTokens);
  const raw = createReadStream(file);
  const input = isCompressedInput(file) ? raw.pipe(createGunzip()) : raw;
  if (input !== raw) raw.on('error', (error) => input.destroy(error));
  for await (const { result } of readRecords(input, {
    maxLineBytes: catalogInUse().requestBodyLimitBytes,
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

  constructor(
    private readonly maxErrorRate: number,
    /** The smallest pool's quota a minute: a call that needs more waits for more than the bucket holds. */
    private readonly minuteTokens: number,
  ) {}
  readonly prefixes = new PrefixTally();
  private readonly longContextLines: number[] = [];
  private readonly models: Record<string, number> = {};
  private readonly cost = {
    global: { low: 0, likely: 0, high: 0 },
    regional: { low: 0, likely: 0, high: 0 },
  };
  /** Records to models the catalog has no price for, by model id: the estimate leaves them out. */
  private readonly unpriced: Record<string, number> = {};
  /** Models the catalog does not list the asked-for tier for: priced at default, where Bedrock's refusal sends them. */
  private readonly tierNotTaken = new Set<string>();
  private tier: ServiceTier = DEFAULT_SERVICE_TIER;
  /** Model ids the catalog does not list (run as unknown models): cost and 1M context unknown. */
  private readonly unknownModels = new Set<string>();
  /** Lines whose call takes more than a minute of the quota (input and every max_tokens, at the burndown). */
  private readonly overAMinute = {
    records: 0,
    largest: undefined as { line: number; quotaTokens: number } | undefined,
  };
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
    const { lower, upper } = invocation.estimate;
    this.tier = invocation.tier;
    if (!catalogInUse().lists(model)) this.unknownModels.add(invocation.modelId);
    const tier = takesTier(model, invocation.tier) ? invocation.tier : DEFAULT_SERVICE_TIER;
    if (tier !== invocation.tier) this.tierNotTaken.add(invocation.modelId);
    if (pricesAt(model, tier).standard === undefined)
      this.unpriced[invocation.modelId] = (this.unpriced[invocation.modelId] ?? 0) + 1;
    for (const endpoint of ['global', 'regional'] as const satisfies readonly EndpointKind[]) {
      const costOf = (input: number, output: number) =>
        costOfRequest({ input_tokens: input, output_tokens: output }, model, endpoint, tier)?.total ?? 0;
      this.cost[endpoint].low += costOf(lower, 0);
      this.cost[endpoint].likely += costOf(
        Math.round((lower + upper) / 2),
        Math.round(invocation.maxTokens * LIKELY_OUTPUT_SHARE),
      );
      this.cost[endpoint].high += costOf(upper, invocation.maxTokens);
    }
    const quotaTokens = upper + invocation.maxTokens * OUTPUT_TOKEN_BURNDOWN;
    if (quotaTokens > this.minuteTokens) {
      this.overAMinute.records += 1;
      if (quotaTokens > (this.overAMinute.largest?.quotaTokens ?? 0))
        this.overAMinute.largest = { line: lineNumber, quotaTokens };
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
        global: usdOf(cost.global),
        regional: usdOf(cost.regional),
        /** In the batch lane (files of enough records, results within hours), at the batch price. */
        batch: usdOf(cost.global, catalogInUse().batch.priceMultiplier),
      },
      /** Records whose model has no known price, by model id: unknown cost, left out of the estimate. */
      unpricedRecords: this.unpriced,
      /** Models the catalog does not say take the file's tier: priced at default, where a refusal sends them. */
      unknownModels: [...this.unknownModels],
      tier: this.tier,
      tierNotTakenBy: [...this.tierNotTaken],
      likelyOutputShare: LIKELY_OUTPUT_SHARE,
      batchMinimumRecords: catalogInUse().batch.minimumRecordsPerJob,
      pools: quotas.pools.map(({ pool }) => pool),
      poolsLeftOut: quotas.leftOut,
      /** Records that need more than a minute of the (smallest) quota each: each waits for it to refill. */
      overAMinuteOfQuota: { ...this.overAMinute, tokensPerMinute: this.minuteTokens },
      atQuota: {
        tokensPerMinute: together,
        pools: quotas.pools.length,
        quotaTokens,
        seconds: secondsAt(together),
        perPool: quotas.pools.map((pool) => ({ ...pool, seconds: secondsAt(pool.tokensPerMinute) })),
      },
      sharedPrefixes: this.prefixes.summary(),
      pricesCheckedOn: catalogInUse().pricesCheckedOn,
    };
  }
}

/**
 * A likely cost takes answers at this share of their max_tokens: an assumption, said as such, between the
 * range's ends (no output, every max_tokens used).
 */
const LIKELY_OUTPUT_SHARE = 0.5;

function usdOf(cost: { low: number; likely: number; high: number }, multiplier = 1) {
  return {
    low: nanoUsdToUsd(Math.round(cost.low * multiplier)),
    likely: nanoUsdToUsd(Math.round(cost.likely * multiplier)),
    high: nanoUsdToUsd(Math.round(cost.high * multiplier)),
  };
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
      const found: {
        modelId: string;
        blocks: number;
        tokens: number;
        records: number;
        estimatedSavingUsd?: number;
      } = { modelId, blocks, tokens, records: sharing };
      const prices = model.prices.standard;
      if (prices === undefined) return found;
      const uncached = sharing * tokens * prices.input;
      const cached = tokens * prices.cacheWrite + Math.max(0, sharing - 1) * tokens * prices.cacheRead;
      return {
        ...found,
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
  term.out(
    `${term.bold(`Plan for ${plan.file}`)}: ${count(plan.records, 'record')}, ${number(plan.valid)} valid, ${number(errors.length)} with errors\n`,
  );
  // A message that names its line already (most do) is not given the line again.
  for (const error of errors)
    term.out(
      `  ${/^Line \d+ /.test(error.message) ? '' : `${term.red(`line ${error.line}`)} `}${term.red(error.code)}: ${error.message}\n`,
    );
  if (plan.stopsNearLine !== undefined)
    term.out(
      `  ${term.red('too many invalid lines')}: a run stops reading near line ${plan.stopsNearLine} and fails the job (max-error-rate ${plan.maxErrorRate * 100}%)\n`,
    );
  for (const [modelId, records] of Object.entries(plan.models))
    term.out(`  ${count(records, 'record')} to ${modelId}\n`);
  term.out(
    `  input tokens ${number(plan.inputTokens.low)} to ${number(plan.inputTokens.high)}, output at most ${number(plan.maxOutputTokens)}\n`,
  );
  if (plan.longContextRecords.length > 0)
    term.out(`  1M context for lines ${plan.longContextRecords.join(', ')}\n`);
  for (const prefix of plan.sharedPrefixes)
    term.out(
      `  shared prefix: about ${number(prefix.tokens)} tokens in ${count(prefix.records, 'record')} to ${prefix.modelId}; ${prefix.estimatedSavingUsd === undefined ? 'what caching saves is unknown (no price for the model)' : `caching saves about ${usd(prefix.estimatedSavingUsd, 6)} (global prices)`}\n`,
    );
  for (const [modelId, records] of Object.entries(plan.unpricedRecords))
    term.out(
      `  ${term.red('cost unknown')} for ${count(records, 'record')} to ${modelId}: the catalog has no price for the model, so the estimate below leaves them out\n`,
    );
  for (const modelId of plan.unknownModels)
    term.out(
      `  ${term.red('not in the catalog')}: ${modelId} runs as an unknown model: its cost and its context window are unknown (long documents go as they are, with no 1M beta)\n`,
    );
  for (const modelId of plan.tierNotTakenBy)
    term.out(
      `  service tier ${plan.tier}: not listed for ${modelId} in the catalog; priced at default, where Bedrock's refusal would send its records\n`,
    );
  const range = (amounts: { low: number; likely: number; high: number }) =>
    `${usd(amounts.likely, 6)} likely (${usd(amounts.low, 6)} to ${usd(amounts.high, 6)})`;
  term.out(
    `  estimated cost: global ${range(cost.global)}, regional ${range(cost.regional)}; ` +
      `likely takes answers at ${plan.likelyOutputShare * 100}% of their max_tokens, the range from no output to all of it (prices of ${plan.pricesCheckedOn})\n` +
      `  in the batch lane (--lane batch or auto, ${number(plan.batchMinimumRecords)} records or more, results within hours): ${range(cost.batch)}\n`,
  );
  printQuotaTimes(plan, term);
}

function printQuotaTimes(plan: Plan, term: Terminal): void {
  const { atQuota, overAMinuteOfQuota: over } = plan;
  const span = (seconds: { low: number; high: number }) =>
    seconds.high === 0 ? 'within the first minute' : `${duration(seconds.low)} to ${duration(seconds.high)}`;
  if (atQuota.perPool.length > 1) {
    for (const pool of atQuota.perPool)
      term.out(
        `  quota pool ${pool.pool}: ${number(pool.tokensPerMinute)} tokens a minute, ${span(pool.seconds)} alone\n`,
      );
  }
  for (const { pool, reason } of plan.poolsLeftOut) term.out(`  left out: ${pool}: ${reason}\n`);
  const all = atQuota.pools > 1 ? ` in all ${atQuota.pools} pools` : '';
  term.out(
    `  at ${number(atQuota.tokensPerMinute)} tokens a minute${all}: ${span(atQuota.seconds)} of quota ` +
      `(${number(atQuota.quotaTokens.low)} to ${number(atQuota.quotaTokens.high)} quota tokens: input alone, to every max_tokens used at ${OUTPUT_TOKEN_BURNDOWN} a token)\n`,
  );
  if (over.largest !== undefined)
    term.out(
      `  ${term.red('waits for tokens')}: ${count(over.records, 'record needs', 'records need')} more than a minute of the quota each ` +
        `(line ${over.largest.line}: up to ${number(over.largest.quotaTokens)} quota tokens against ${number(over.tokensPerMinute)} a minute, ` +
        `about ${duration((over.largest.quotaTokens / over.tokensPerMinute) * 60)} of it alone); records of other models and budgets go on meanwhile\n`,
    );
}
