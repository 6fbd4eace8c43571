import { Tracer } from '@aws-lambda-powertools/tracer';
import type { BudgetRates } from '../shared/budget/bucket.ts';
import { catalogInUse } from '../shared/catalog/catalog.ts';
import type { MetricsService } from '../shared/contract/metrics.ts';
import type { JobSettings } from '../shared/core/model.ts';
import { catalogModelOf } from '../shared/models/resolve-model.ts';
import { ConfiguredQuotas, type QuotaReport, ServiceQuotaRates } from '../shared/quotas/pool-rates.ts';
import { choiceOf, poolsFor, type QuotaPool } from '../shared/quotas/pools.ts';
import { configuredReading } from '../shared/quotas/service-quotas.ts';
import { type AwsClients, awsClients } from './adapters/clients.ts';
import { eventBridgePutEvent, type PutEvent } from './adapters/events.ts';
import { ServiceQuotasSource } from './adapters/service-quotas.ts';
import { observability } from './observability.ts';

/**
 * What every Lambda entry point builds once, at cold start, from its validated settings: the AWS clients
 * (traced), logger, metrics and tracer.
 */
export function lambdaEnvironment(
  serviceName: MetricsService,
  settings: { readonly BEDROCK_REGION?: string; readonly SDK_MAX_ATTEMPTS?: number } & Record<
    string,
    unknown
  >,
) {
  const region = process.env.AWS_REGION ?? settings.BEDROCK_REGION ?? 'us-east-1';
  const tracer = new Tracer({ serviceName });
  const clients: AwsClients = awsClients({
    region,
    ...(settings.BEDROCK_REGION === undefined ? {} : { bedrockRegion: settings.BEDROCK_REGION }),
    ...(settings.SDK_MAX_ATTEMPTS === undefined ? {} : { bedrockMaxAttempts: settings.SDK_MAX_ATTEMPTS }),
    observe: (client) => tracer.captureAWSv3Client(client),
  });
  return { clients, tracer, ...observability(serviceName) };
}

/** PutEvents on the function's bus. */
export function busPutEvent(clients: AwsClients, settings: { EVENT_BUS_NAME: string }): PutEvent {
  return eventBridgePutEvent(clients.events, settings.EVENT_BUS_NAME);
}

interface AddressSettings {
  LEDGER_TABLE_NAME: string;
  RETENTION_DAYS?: number;
  RECORD_QUEUE_URL?: string;
  RECORD_DLQ_URL?: string;
  FINALIZE_QUEUE_URL?: string;
  DEADLINE_QUEUE_URL?: string | undefined;
}

/** The addresses a function's settings give, under the names the port builder uses. */
export type AddressesOf<Settings extends AddressSettings> = {
  tableName: string;
  retentionDays?: number;
  deadlineQueueUrl?: string;
} & (Settings extends {
  RECORD_QUEUE_URL: string;
}
  ? { recordQueueUrl: string }
  : unknown) &
  (Settings extends { RECORD_DLQ_URL: string } ? { recordDlqUrl: string } : unknown) &
  (Settings extends { FINALIZE_QUEUE_URL: string } ? { finalizeQueueUrl: string } : unknown);

export function addressesOf<Settings extends AddressSettings>(settings: Settings): AddressesOf<Settings> {
  return {
    tableName: settings.LEDGER_TABLE_NAME,
    ...(settings.RETENTION_DAYS === undefined ? {} : { retentionDays: settings.RETENTION_DAYS }),
    ...(settings.RECORD_QUEUE_URL === undefined ? {} : { recordQueueUrl: settings.RECORD_QUEUE_URL }),
    ...(settings.RECORD_DLQ_URL === undefined ? {} : { recordDlqUrl: settings.RECORD_DLQ_URL }),
    ...(settings.FINALIZE_QUEUE_URL === undefined ? {} : { finalizeQueueUrl: settings.FINALIZE_QUEUE_URL }),
    ...(settings.DEADLINE_QUEUE_URL === undefined ? {} : { deadlineQueueUrl: settings.DEADLINE_QUEUE_URL }),
  } as AddressesOf<Settings>;
}

export function jobDefaultsOf(settings: {
  BEDROCK_MODEL: string;
  BEDROCK_REGION: string;
  BEDROCK_ENDPOINT: JobSettings['endpoint'];
  BEDROCK_ENDPOINTS?: JobSettings['endpoints'] | undefined;
  BEDROCK_REGIONS?: JobSettings['regions'] | undefined;
  DEFAULT_MAX_TOKENS: number;
  ALLOWED_MODEL_IDS?: readonly string[] | undefined;
  DEFAULT_LANE?: JobSettings['lane'];
  DEFAULT_DEADLINE?: number | undefined;
  DEFAULT_CACHE?: JobSettings['cache'];
  DEFAULT_TIER?: JobSettings['tier'];
  MAX_ERROR_RATE?: number | undefined;
}): JobSettings {
  return {
    model: settings.BEDROCK_MODEL,
    region: settings.BEDROCK_REGION,
    endpoint: settings.BEDROCK_ENDPOINT,
    ...(settings.BEDROCK_ENDPOINTS === undefined ? {} : { endpoints: settings.BEDROCK_ENDPOINTS }),
    ...(settings.BEDROCK_REGIONS === undefined ? {} : { regions: settings.BEDROCK_REGIONS }),
    defaultMaxTokens: settings.DEFAULT_MAX_TOKENS,
    ...(settings.ALLOWED_MODEL_IDS === undefined ? {} : { allowedModelIds: settings.ALLOWED_MODEL_IDS }),
    ...(settings.DEFAULT_LANE === undefined ? {} : { lane: settings.DEFAULT_LANE }),
    ...(settings.DEFAULT_DEADLINE === undefined ? {} : { deadlineHours: settings.DEFAULT_DEADLINE }),
    ...(settings.DEFAULT_CACHE === undefined ? {} : { cache: settings.DEFAULT_CACHE }),
    ...(settings.DEFAULT_TIER === undefined || settings.DEFAULT_TIER === 'default'
      ? {}
      : { tier: settings.DEFAULT_TIER }),
    ...(settings.MAX_ERROR_RATE === undefined ? {} : { maxErrorRate: settings.MAX_ERROR_RATE }),
  };
}

export const maxLineBytes = catalogInUse().requestBodyLimitBytes;

/** Every quota pool the deployment's models may use: what the worker reads quotas for. */
export function deploymentPools(settings: Parameters<typeof jobDefaultsOf>[0]): QuotaPool[] {
  const defaults = jobDefaultsOf(settings);
  const models = new Map(
    (settings.ALLOWED_MODEL_IDS ?? [settings.BEDROCK_MODEL])
      .map((name) => catalogModelOf(name))
      .map((model) => [model.key, model] as const),
  );
  return [...models.values()].flatMap((model) => poolsFor(model, choiceOf(defaults)).pools);
}

/** Refreshed this often: a quota raised in Service Quotas is spent within minutes, with no deploy. */
const QUOTA_REFRESH_MS = 5 * 60_000;

/**
 * The deployment's pool quotas, once per function instance: read from Service Quotas (and read again now and
 * then) when the stack says so, else the configured quota in every pool. The worker's budget spends them
 * (`rates`); the finalizer's manifest reports them (`report`).
 */
export function deploymentQuotas(
  settings: Parameters<typeof deploymentPools>[0] & {
    readonly TOKENS_PER_MINUTE: number;
    readonly READ_SERVICE_QUOTAS: boolean;
    readonly QUOTA_SHARE: number;
  },
): { readonly rates: ServiceQuotaRates | BudgetRates; readonly report: QuotaReport } {
  const pools = deploymentPools(settings);
  if (!settings.READ_SERVICE_QUOTAS) {
    return {
      rates: { tokensPerMinute: settings.TOKENS_PER_MINUTE },
      report: new ConfiguredQuotas(
        configuredReading(pools, { configured: settings.TOKENS_PER_MINUTE, share: 1 }),
      ),
    };
  }
  const rates = new ServiceQuotaRates(pools, new ServiceQuotasSource(), {
    fallback: settings.TOKENS_PER_MINUTE,
    share: settings.QUOTA_SHARE,
    refreshMs: QUOTA_REFRESH_MS,
  });
  return { rates, report: rates };
}
