import { z } from 'zod';
import { endpointKinds } from '../../shared/catalog/catalog.ts';
import { lanes } from '../../shared/contract/lanes.ts';
import { jobKey, LEDGER_TABLE } from '../../shared/contract/ledger-table.ts';
import { serviceTiers } from '../../shared/contract/service-tiers.ts';
import type {
  Announcement,
  DecompressCheckpoint,
  FinalizeCheckpoint,
  JobRecord,
  JobRetries,
  JobSettings,
  ObjectLocation,
} from '../../shared/core/model.ts';
import { jobStatuses } from '../../shared/core/model.ts';
import { NO_RETRIES, RETRY_COUNTERS } from '../../shared/core/retries.ts';
import { INPUT_FAMILIES } from '../../shared/input/records.ts';
import { emptyTotals, type JobTotals, totalsPlus } from '../../shared/output/manifest.ts';
import { withoutUndefined } from './ledger-writes.ts';

/** A job as its ledger item: counters as top-level numbers (so transactions can ADD to them), events as JSON. */
/** The ledger attribute each of a job's counters is kept in (ADDed by every batch that counts it). */
export const RETRY_ATTRIBUTES: Readonly<Record<keyof JobRetries, string>> = {
  retried: 'retriedCount',
  bedrockThrottles: 'bedrockThrottleCount',
  budgetWaits: 'budgetWaitCount',
  sentBackToWait: 'sentBackToWaitCount',
  receives: 'receiveCount',
  bedrockCalls: 'bedrockCallCount',
};

/** A job's counters from its item; a counter the item lacks (written before it was kept) is 0. */
function retriesOf(number: (attribute: string) => number): JobRetries {
  const retries: { -readonly [Name in keyof JobRetries]: number } = { ...NO_RETRIES };
  for (const name of RETRY_COUNTERS) retries[name] = number(RETRY_ATTRIBUTES[name]);
  return retries;
}

export function jobItem(job: JobRecord): Record<string, unknown> {
  const { totals, source, retries, announcement, tierRefusals, ...rest } = job;
  return {
    ...jobKey(job.jobId),
    ...withoutUndefined(rest),
    bucket: source.bucket,
    key: source.key,
    ...(source.versionId === undefined ? {} : { versionId: source.versionId }),
    ...(source.etag === undefined ? {} : { etag: source.etag }),
    ...totals,
    ...Object.fromEntries(RETRY_COUNTERS.map((name) => [RETRY_ATTRIBUTES[name], retries[name]])),
    ...(announcement === undefined ? {} : { announcement: JSON.stringify(announcement) }),
    // A string set, which refusals are ADDed to; DynamoDB has no empty set.
    ...(tierRefusals.length === 0 ? {} : { tierRefusals: new Set(tierRefusals) }),
    [LEDGER_TABLE.recentJobsIndex.partitionKey]: LEDGER_TABLE.recentJobsIndex.value,
    // A job stays on the sweeper's index until it has finished and its event is published.
    ...(job.status === 'failed' && announcement === undefined
      ? {}
      : { [LEDGER_TABLE.activeJobsIndex.partitionKey]: LEDGER_TABLE.activeJobsIndex.value }),
  };
}

/**
 * The shapes a job item holds as maps and JSON, parsed when the item is read: an item another version wrote
 * reads as what it is, or fails naming the field, never as a cast that fails later.
 */
const jobSettingsSchema = z.object({
  model: z.string(),
  region: z.string(),
  endpoint: z.enum(endpointKinds),
  endpoints: z.array(z.enum(endpointKinds)).exactOptional(),
  regions: z.array(z.string()).exactOptional(),
  defaultMaxTokens: z.number().int().positive(),
  allowedModelIds: z.array(z.string()).exactOptional(),
  lane: z.enum(lanes).exactOptional(),
  deadlineHours: z.number().positive().exactOptional(),
  cache: z.enum(['auto', 'off']).exactOptional(),
  tier: z.enum(serviceTiers).exactOptional(),
  maxErrorRate: z.number().min(0).max(1).exactOptional(),
  maxCostUsd: z.number().positive().exactOptional(),
  expiresAt: z.iso.datetime().exactOptional(),
}) satisfies z.ZodType<JobSettings>;

const familyCountsSchema = z.partialRecord(z.enum(INPUT_FAMILIES), z.number()) satisfies z.ZodType<
  JobRecord['familyCounts']
>;

const batchPartsSchema = z.record(
  z.string(),
  z.object({
    part: z.number().int().nonnegative(),
    records: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    state: z.enum(['staged', 'submitted', 'collected', 'on-demand']),
    jobArn: z.string().exactOptional(),
    endedAs: z.string().exactOptional(),
  }),
) satisfies z.ZodType<JobRecord['batchParts']>;

const sharedPrefixesSchema = z.record(
  z.string(),
  z.object({
    blocks: z.number().int().nonnegative(),
    fingerprint: z.string(),
    tokens: z.number().nonnegative(),
    ttl: z.enum(['5m', '1h']).exactOptional(),
  }),
) satisfies z.ZodType<JobRecord['sharedPrefixes']>;

const prefixWritesSchema = z.record(
  z.string(),
  z.object({ writer: z.string(), until: z.number(), writtenAt: z.number().exactOptional() }),
) satisfies z.ZodType<JobRecord['prefixWrites']>;

const announcementSchema = z.object({
  detailType: z.string(),
  detail: z.record(z.string(), z.unknown()),
}) satisfies z.ZodType<Announcement>;

const objectLocationSchema = z.object({
  bucket: z.string(),
  key: z.string(),
  versionId: z.string().optional(),
  etag: z.string().optional(),
}) satisfies z.ZodType<ObjectLocation>;

/** A job's status as stored; jobs canceled before the pipeline spelt it as Anthropic does say `cancelled`. */
const storedStatus = z.preprocess(
  (value) => (value === 'cancelled' ? 'canceled' : value),
  z.enum(jobStatuses),
);

/** The job a ledger item holds. */
export function jobOf(item: Record<string, unknown>): JobRecord {
  const number = (field: string) => Number(item[field] ?? 0);
  const text = (field: string) => (item[field] === undefined ? undefined : String(item[field]));
  return {
    jobId: String(item.jobId),
    status: storedStatus.parse(item.status),
    source: {
      bucket: String(item.bucket),
      key: String(item.key),
      versionId: text('versionId'),
      etag: text('etag'),
    },
    settings: jobSettingsSchema.parse(item.settings),
    createdAt: String(item.createdAt),
    updatedAt: String(item.updatedAt),
    readOffset: number('readOffset'),
    readLine: number('readLine'),
    recordsRead: number('recordsRead'),
    invalidLines: number('invalidLines'),
    totalRecords: item.totalRecords === undefined ? undefined : number('totalRecords'),
    doneRecords: number('doneRecords'),
    totals: totalsOf(number),
    familyCounts: familyCountsSchema.parse(item.familyCounts ?? {}),
    poolRecords: poolRecordsOf(item),
    failureReason: text('failureReason'),
    finishedAt: text('finishedAt'),
    cancelRequested: item.cancelRequested === true,
    ...(typeof item.cancelReason === 'string' ? { cancelReason: item.cancelReason } : {}),
    retries: retriesOf(number),
    announcement:
      typeof item.announcement === 'string'
        ? announcementSchema.parse(JSON.parse(item.announcement))
        : undefined,
    decompressed:
      typeof item.decompressed === 'string'
        ? objectLocationSchema.parse(JSON.parse(item.decompressed))
        : undefined,
    decompressing:
      typeof item.decompressing === 'string' ? decompressCheckpointOf(item.decompressing) : undefined,
    inputNotice: text('inputNotice'),
    finalizeCheckpoint:
      typeof item.finalizeCheckpoint === 'string' ? finalizeCheckpointOf(item.finalizeCheckpoint) : undefined,
    batchParts: item.batchParts === undefined ? undefined : batchPartsSchema.parse(item.batchParts),
    sharedPrefixes:
      item.sharedPrefixes === undefined ? undefined : sharedPrefixesSchema.parse(item.sharedPrefixes),
    prefixWrites: prefixWritesSchema.parse(item.prefixWrites ?? {}),
    tierRefusals: z.array(z.string()).parse(item.tierRefusals instanceof Set ? [...item.tierRefusals] : []),
  };
}

/** A job's totals: one top-level number attribute per counter (ADDed to), 0 where none was ever added. */
function totalsOf(number: (name: string) => number): JobTotals {
  const stored = Object.fromEntries(Object.keys(emptyTotals).map((counter) => [counter, number(counter)]));
  return totalsPlus(emptyTotals, stored);
}

/**
 * Records per quota pool are top-level attributes, `poolRecords:<pool>`, each created by its first ADD: a
 * job started before pools were counted has none, and a nested map would need creating first.
 */
export const POOL_RECORDS_PREFIX = 'poolRecords:';

function poolRecordsOf(item: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(item).flatMap(([name, value]) =>
      name.startsWith(POOL_RECORDS_PREFIX) && typeof value === 'number'
        ? [[name.slice(POOL_RECORDS_PREFIX.length), value]]
        : [],
    ),
  );
}

const checkpointFields = {
  uploadId: z.string().min(1),
  parts: z.array(z.object({ part: z.number().int().positive(), etag: z.string() })),
  linesWritten: z.number().int().nonnegative(),
  stats: z.unknown(),
};

/** Checkpoints say the last line written; those saved before result sets name its result object instead. */
const finalizeCheckpointSchema = z.union([
  z.object({ ...checkpointFields, lastLine: z.number().int().nonnegative() }),
  z
    .object({ ...checkpointFields, lastResultKey: z.string().regex(/\/(\d+)\.json$/) })
    .transform(({ lastResultKey, ...rest }) => ({
      ...rest,
      lastLine: Number(/\/(\d+)\.json$/.exec(lastResultKey)?.[1]),
    })),
]);

const decompressCheckpointSchema = z.object({
  uploadId: z.string().min(1),
  parts: z.array(z.object({ part: z.number().int().positive(), etag: z.string() })),
  bytes: z.number().int().nonnegative(),
});

/** A job's saved decompression checkpoint, checked. */
export function decompressCheckpointOf(json: string): DecompressCheckpoint {
  return decompressCheckpointSchema.parse(JSON.parse(json));
}

/** A job's saved finalize checkpoint, checked. */
export function finalizeCheckpointOf(json: string): FinalizeCheckpoint {
  return finalizeCheckpointSchema.parse(JSON.parse(json));
}
