import { createHash } from 'node:crypto';
import { z } from 'zod';
import { deadlineHoursSchema } from '../batch/lane.ts';
import { type EndpointKind, endpointKinds } from '../catalog/catalog.ts';
import { lanes } from '../contract/lanes.ts';
import { serviceTiers } from '../contract/service-tiers.ts';
import type { JobRecord, JobSettings, ObjectLocation } from '../core/model.ts';
import { NO_RETRIES } from '../core/retries.ts';
import { ConfigurationError, ModelSelectionError } from '../errors.ts';
import { errorRateSchema } from '../input/error-rate.ts';
import type { InputFamily } from '../input/records.ts';
import { assertModelAllowed, endpointNamedBy, resolveModel } from '../models/resolve-model.ts';
import { emptyTotals } from '../output/manifest.ts';
import { noLooserThan, parseEndpoints, poolsFor, splitList } from '../quotas/pools.ts';

/**
 * A job is one version of one input object: a duplicate event for it finds the job already there, while a
 * re-upload (a new version or ETag) is a new job.
 */
export function jobIdOf(bucket: string, key: string, versionOrEtag: string): string {
  return `job-${createHash('sha256').update(`${bucket}\n${key}\n${versionOrEtag}`).digest('hex').slice(0, 24)}`;
}

/** The object a job's records are read from, and referenced in by byte range: the file, or its decompressed copy. */
export function readableOf(job: Pick<JobRecord, 'source' | 'decompressed'>): ObjectLocation {
  return job.decompressed ?? job.source;
}

const fileOptions = z.strictObject({
  model: z.string().trim().min(1).optional(),
  endpoint: z.enum(endpointKinds).optional(),
  endpoints: z.string().trim().min(1).optional(),
  regions: z.string().trim().min(1).optional(),
  'max-tokens': z.coerce.number().int('must be a whole number').positive('must be positive').optional(),
  lane: z.enum(lanes, { error: `must be one of ${lanes.join(', ')}` }).optional(),
  deadline: deadlineHoursSchema.optional(),
  cache: z.enum(['auto', 'off'], { error: 'must be auto or off' }).optional(),
  tier: z.enum(serviceTiers, { error: `must be one of ${serviceTiers.join(', ')}` }).optional(),
  'expires-at': z.iso.datetime({ error: 'must be a UTC time such as 2026-12-08T09:00:00Z' }).optional(),
  'max-error-rate': errorRateSchema.optional(),
  'max-cost': z.coerce
    .number({ error: 'must be an amount of USD above 0, such as 25 or 0.5' })
    .positive('must be an amount of USD above 0, such as 25 or 0.5')
    .optional(),
});

/**
 * A file's own settings, from its S3 user metadata (`aws s3 cp f.jsonl s3://b/inputs/ --metadata
 * model=haiku-4.5,endpoint=regional,max-tokens=512,lane=batch,deadline=6h,tier=flex,max-error-rate=10%`), over the stack's defaults.
 * Lists (`endpoints=global+regional`, `regions=us-east-1+us-west-2`) take `+` between items, since the
 * CLI's metadata splits at commas. The model is resolved for the region and endpoint at once, and its quota
 * pools checked for residency, so a bad combination fails the job before any record is sent.
 */
export function jobSettingsFrom(
  metadata: Readonly<Record<string, string>>,
  defaults: JobSettings,
): JobSettings {
  const parsed = fileOptions.safeParse(metadata);
  if (!parsed.success) {
    throw new ConfigurationError(
      parsed.error.issues.map((issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown file option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')} (use model, endpoint, endpoints, regions, max-tokens, lane, deadline, cache, tier, expires-at, max-error-rate, max-cost)`
          : `file option ${String(issue.path[0])} ${issue.message}`,
      ),
    );
  }
  const model = parsed.data.model ?? defaults.model;
  const endpoints = endpointsOf(parsed.data, endpointNamedBy(model), defaults);
  const regions = regionsOf(parsed.data.regions, defaults);
  const [endpoint = defaults.endpoint] = endpoints;
  const [region = defaults.region] = regions;
  const settings: JobSettings = {
    model,
    endpoint,
    region,
    ...(endpoints.length > 1 ? { endpoints } : {}),
    ...(regions.length > 1 ? { regions } : {}),
    defaultMaxTokens: parsed.data['max-tokens'] ?? defaults.defaultMaxTokens,
    ...(defaults.allowedModelIds === undefined ? {} : { allowedModelIds: defaults.allowedModelIds }),
    ...optional('lane', parsed.data.lane ?? defaults.lane),
    ...optional('deadlineHours', parsed.data.deadline ?? defaults.deadlineHours),
    ...optional('cache', parsed.data.cache ?? defaults.cache),
    ...optional('tier', parsed.data.tier ?? defaults.tier),
    ...optional('expiresAt', parsed.data['expires-at']),
    ...optional('maxErrorRate', parsed.data['max-error-rate'] ?? defaults.maxErrorRate),
    ...optional('maxCostUsd', parsed.data['max-cost'] ?? defaults.maxCostUsd),
  };
  const catalogModel = checked('file option model', () => {
    const resolved = resolveModel(settings);
    assertModelAllowed(resolved, settings.allowedModelIds);
    return resolved.model;
  });
  checked('file options endpoints and regions', () => {
    if (poolsFor(catalogModel, { endpoints, regions }).pools.length === 0)
      throw new ModelSelectionError(
        'NO_POOLS',
        `${catalogModel.displayName} is not offered in any of ${regions.join(', ')}.`,
      );
  });
  return settings;
}

/** What `check` gives, or its ModelSelectionError as a ConfigurationError about `options`. */
function checked<Value>(options: string, check: () => Value): Value {
  try {
    return check();
  } catch (error) {
    if (error instanceof ModelSelectionError) throw new ConfigurationError([`${options}: ${error.message}`]);
    throw error;
  }
}

/**
 * The endpoint kinds a file's records may use, most preferred first: its own list; or its endpoint (a
 * prefixed model id names one) then the deployment's kinds that keep data at least as close; or the
 * deployment's.
 */
function endpointsOf(
  options: { readonly endpoint?: EndpointKind | undefined; readonly endpoints?: string | undefined },
  namedByModel: EndpointKind | undefined,
  defaults: JobSettings,
): EndpointKind[] {
  if (options.endpoints !== undefined && options.endpoint !== undefined)
    throw new ConfigurationError([
      'file options endpoint and endpoints: give one (endpoints lists the kinds, most preferred first)',
    ]);
  const deployment = defaults.endpoints ?? [defaults.endpoint];
  if (options.endpoints !== undefined) {
    try {
      return parseEndpoints(options.endpoints, 'file option endpoints');
    } catch (error) {
      if (error instanceof ModelSelectionError) throw new ConfigurationError([error.message]);
      throw error;
    }
  }
  const preferred = options.endpoint ?? namedByModel;
  if (preferred === undefined) return [...deployment];
  return [preferred, ...noLooserThan(deployment, preferred).filter((kind) => kind !== preferred)];
}

/** The source regions a file's records may be called from: its own list, within the deployment's. */
function regionsOf(listed: string | undefined, defaults: JobSettings): string[] {
  const deployment = defaults.regions ?? [defaults.region];
  if (listed === undefined) return [...deployment];
  const regions = [...new Set(splitList(listed))];
  const outside = regions.filter((region) => !deployment.includes(region));
  if (regions.length === 0 || outside.length > 0)
    throw new ConfigurationError([
      `file option regions "${listed}": ${outside.length > 0 ? `${outside.join(', ')} not among` : 'name one or more of'} the deployment's Bedrock regions (${deployment.join(', ')})`,
    ]);
  return regions;
}

function optional<Name extends string, Value>(
  name: Name,
  value: Value | undefined,
): Partial<Record<Name, Value>> {
  return value === undefined ? {} : ({ [name]: value } as Record<Name, Value>);
}

/** The family a line too broken to show its own is written in: the file's most common one. */
export function dominantFamily(counts: Readonly<Partial<Record<InputFamily, number>>>): InputFamily {
  const ranked = (Object.entries(counts) as Array<[InputFamily, number]>).sort((a, b) => b[1] - a[1]);
  return ranked[0]?.[0] ?? 'plain';
}

/** A job as it starts: nothing read, nothing done. */
export function newJobRecord(
  jobId: string,
  source: ObjectLocation,
  settings: JobSettings,
  now: string,
): JobRecord {
  return {
    jobId,
    status: 'enqueuing',
    source,
    settings,
    createdAt: now,
    updatedAt: now,
    readOffset: 0,
    readLine: 1,
    recordsRead: 0,
    invalidLines: 0,
    totalRecords: undefined,
    doneRecords: 0,
    totals: emptyTotals,
    familyCounts: {},
    poolRecords: {},
    failureReason: undefined,
    finishedAt: undefined,
    cancelRequested: false,
    batchParts: undefined,
    sharedPrefixes: undefined,
    prefixWrites: {},
    tierRefusals: [],
    retries: NO_RETRIES,
    announcement: undefined,
    decompressed: undefined,
    decompressing: undefined,
    inputNotice: undefined,
    finalizeCheckpoint: undefined,
  };
}
