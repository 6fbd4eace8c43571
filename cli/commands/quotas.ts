import { ServiceQuotasSource } from '../../functions/adapters/service-quotas.ts';
import { type CatalogModel, catalogInUse, endpointKinds } from '../../shared/catalog/catalog.ts';
import { DEFAULT_TOKENS_PER_MINUTE } from '../../shared/config.ts';
import { resolveModel } from '../../shared/models/resolve-model.ts';
import {
  type PoolLeftOut,
  type PoolPlan,
  parseEndpoints,
  poolName,
  poolsFor,
  splitList,
} from '../../shared/quotas/pools.ts';
import { type QuotaReading, readPoolQuotas } from '../../shared/quotas/service-quotas.ts';
import { knownRegion } from '../arguments.ts';
import { requireAwsCredentials } from '../aws-credentials.ts';
import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { UsageError } from '../errors.ts';
import { jsonOption, modelOptions, quotaOptions, resourceOptions } from '../options.ts';
import { readResourcesFile } from '../resources.ts';
import type { Terminal } from '../terminal.ts';
import { number } from '../words.ts';

export const QUOTAS_COMMAND = {
  name: 'quotas',
  summary:
    'each quota pool of a model, its tokens a minute and a day in your account, what a run would spend',
  description:
    'Lists each quota pool a model may use (source region x endpoint kind), its tokens a minute and a day as ' +
    'Service Quotas applies them to your account, the quota name that matched and what the pipeline would ' +
    'spend, and the pools left out with the reason. Against AWS with the default credential chain, or the ' +
    'local cloud with --resources.',
  positionals: [],
  options: {
    model: {
      ...modelOptions.model,
      help: 'the model to read the pools of (default: every model of the catalog)',
    },
    endpoints: { ...modelOptions.endpoints, default: endpointKinds.join(',') },
    regions: modelOptions.regions,
    region: { ...resourceOptions.region, help: 'one source region: --regions of one' },
    'quota-share': quotaOptions['quota-share'],
    resources: {
      ...resourceOptions.resources,
      help: "read the local cloud's quotas from this resources file (.bedrock-batch/local.json) instead of AWS",
    },
    ...jsonOption,
  },
  examples: ['bedrock-batch quotas --model haiku-4.5 --regions us-east-1,us-west-2 --quota-share 0.8'],
} as const satisfies CommandSpec;

/**
 * Each quota pool a model may use (source region x endpoint kind), its tokens-per-minute and daily quota
 * as Service Quotas applies them to the account, the name that matched, and what the pipeline would spend;
 * pools left out and why. Against AWS with the default credential chain, or the local cloud (`--resources`).
 */
export async function quotasCommand(args: string[], term: Terminal): Promise<number> {
  const { values } = parseCommandLine(args, QUOTAS_COMMAND);
  const regions = sourceRegions(values);
  const endpoints = parseEndpoints(values.endpoints, '--endpoints');
  const [home = ''] = regions;
  const models =
    values.model === undefined
      ? catalogInUse().models
      : [resolveModel({ model: values.model, region: home }).model];
  const share = quotaShare(values['quota-share']);
  // Residency is checked before any call: a refused choice needs no credentials to be told so.
  const plans = models.map((model) => ({ model, plan: poolsFor(model, { endpoints, regions }) }));
  const local = values.resources === undefined ? undefined : await readResourcesFile(values.resources);
  if (local === undefined)
    await requireAwsCredentials(home, {
      for: 'reading Service Quotas',
      otherwise: "read the local cloud's with --resources .bedrock-batch/local.json",
    });
  const source = new ServiceQuotasSource(
    local === undefined ? {} : { endpoint: local.endpoints?.bedrock, credentials: local.credentials },
  );
  try {
    const readings = await Promise.all(plans.map(({ model, plan }) => quotasOf(model, plan, share, source)));
    if (values.json) term.out(`${JSON.stringify(readings.map(asJson), null, 2)}\n`);
    else for (const reading of readings) term.out(describe(reading, term));
  } finally {
    source.destroy();
  }
  return 0;
}

/** The source regions: `--regions` (the home region first) or the one `--region`; never a default. */
export function sourceRegions(values: {
  regions?: string | undefined;
  region?: string | undefined;
}): string[] {
  const given = values.regions ?? values.region;
  if (given === undefined) {
    throw new UsageError(
      'No region was given.',
      'Name the regions to call from with --regions us-east-1,us-west-2 (the home region first) or --region.',
    );
  }
  const regions = splitList(given).map(knownRegion);
  if (regions.length === 0) throw new UsageError(`--regions "${given}" names no region.`);
  return regions;
}

/** The part of each quota to spend: a number above 0 and at most 1; all of it when not given. */
export function quotaShare(text: string | undefined): number {
  if (text === undefined) return 1;
  const share = Number(text);
  if (text.trim() === '' || !(share > 0 && share <= 1))
    throw new UsageError(`--quota-share must be above 0 and at most 1, not "${text}".`, 'For example 0.8.');
  return share;
}

interface ModelQuotas {
  readonly model: CatalogModel;
  readonly reading: QuotaReading;
  readonly unoffered: readonly PoolLeftOut[];
}

async function quotasOf(
  model: CatalogModel,
  plan: PoolPlan,
  share: number,
  source: ServiceQuotasSource,
): Promise<ModelQuotas> {
  const reading = await readPoolQuotas(plan.pools, source, { fallback: DEFAULT_TOKENS_PER_MINUTE, share });
  return { model, reading, unoffered: plan.leftOut };
}

function describe({ model, reading, unoffered }: ModelQuotas, term: Terminal): string {
  const lines = [term.bold(model.displayName)];
  const total = reading.quotas.reduce((sum, quota) => sum + quota.usableTokensPerMinute, 0);
  for (const quota of reading.quotas) {
    const { region, endpoint, modelId } = quota.pool;
    const day = quota.tokensPerDay === undefined ? '' : `, ${number(quota.tokensPerDay)} a day`;
    const from =
      quota.origin === 'service-quotas'
        ? `"${quota.matched[0]}"`
        : `${term.red('warning:')} ${quota.warning ?? quota.origin}`;
    lines.push(
      `  ${region.padEnd(15)} ${endpoint.padEnd(10)} ${modelId}: ${number(quota.tokensPerMinute)} tokens a minute${day}; ` +
        `uses ${number(quota.usableTokensPerMinute)}. ${from}`,
    );
  }
  for (const { pool, reason } of reading.leftOut)
    lines.push(
      `  ${pool.region.padEnd(15)} ${pool.endpoint.padEnd(10)} ${pool.modelId}: left out, ${reason}`,
    );
  for (const { region, endpoint, reason } of unoffered)
    lines.push(`  ${region.padEnd(15)} ${endpoint.padEnd(10)} left out: ${reason}`);
  const pools = reading.quotas.length;
  lines.push(`  in all: ${number(total)} tokens a minute over ${pools} pool${pools === 1 ? '' : 's'}`);
  return `${lines.join('\n')}\n`;
}

function asJson({ model, reading, unoffered }: ModelQuotas) {
  return {
    model: model.key,
    pools: reading.quotas.map((quota) => ({
      pool: poolName(quota.pool),
      region: quota.pool.region,
      endpoint: quota.pool.endpoint,
      modelId: quota.pool.modelId,
      tokensPerMinute: quota.tokensPerMinute,
      tokensPerDay: quota.tokensPerDay ?? null,
      usableTokensPerMinute: quota.usableTokensPerMinute,
      origin: quota.origin,
      matched: quota.matched,
      warning: quota.warning ?? null,
    })),
    leftOut: [
      ...reading.leftOut.map(({ pool, reason }) => ({
        region: pool.region,
        endpoint: pool.endpoint,
        modelId: pool.modelId,
        reason,
      })),
      ...unoffered.map(({ region, endpoint, reason }) => ({ region, endpoint, modelId: null, reason })),
    ],
  };
}
