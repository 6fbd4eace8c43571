import { createHash } from 'node:crypto';
import type { Catalog } from '../../shared/catalog/catalog.ts';
import { invokeModelId } from '../../shared/models/resolve-model.ts';
import { BEDROCK_SERVICE_CODE, quotaNameFor } from '../../shared/quotas/service-quotas.ts';
import type { QuotaBoard } from './quota.ts';

/** The JSON 1.1 target prefix of Service Quotas' operations. */
export const SERVICE_QUOTAS_TARGET = 'ServiceQuotasV20190624.';

/** Quotas per page unless the caller asks for fewer: small, so that callers meet paging as they do on AWS. */
const PAGE_SIZE = 8;

/** Quotas of other models and services that Bedrock's list holds too: a reader must pick its own by name. */
const OTHER_QUOTAS: ReadonlyArray<readonly [string, number]> = [
  ['On-demand model inference tokens per minute for Amazon Nova Pro', 2_000_000],
  ['Cross-region model inference tokens per minute for Meta Llama 3.3 70B Instruct', 600_000],
  ['Cross-Model Max Tokens Per Day', 2_880_000_000],
  ['Batch inference job size (in GB)', 5],
];

interface ListedQuota {
  readonly ServiceCode: string;
  readonly ServiceName: string;
  readonly QuotaArn: string;
  readonly QuotaCode: string;
  readonly QuotaName: string;
  readonly Value: number;
  readonly Unit: string;
  readonly Adjustable: boolean;
  readonly GlobalQuota: boolean;
}

/** A Service Quotas error, answered in JSON 1.1's shape (`__type` in the body). */
export class ServiceQuotasError extends Error {
  constructor(
    readonly type: 'NoSuchResourceException' | 'IllegalArgumentException' | 'InvalidPaginationTokenException',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Service Quotas for the stand-in's own quotas, as it applies them: for every model of the catalog its
 * in-region, geographic and global tokens-per-minute quotas and its daily quota in one source region,
 * among quotas of other models, listed in pages (ListServiceQuotas) or one by code (GetServiceQuota).
 */
export class StandInServiceQuotas {
  private readonly quotas: readonly ListedQuota[];

  constructor(region: string, catalog: Catalog, board: QuotaBoard) {
    const named: Array<readonly [string, number]> = [];
    for (const model of catalog.models) {
      const geography = catalog.geographyFor(model, region);
      if (geography === undefined || !model.offeredIn.includes(geography.key)) continue;
      const name = `Anthropic ${model.displayName}`;
      for (const endpoint of ['in-region', 'regional', 'global'] as const) {
        const pool = { region, modelId: invokeModelId(model, endpoint, geography) };
        named.push([quotaNameFor(endpoint, name), board.limitsOf(pool).tokensPerMinute]);
      }
      named.push([
        quotaNameFor('day', name),
        board.limitsOf({ region, modelId: model.bedrockId }).tokensPerDay,
      ]);
    }
    this.quotas = [...named, ...OTHER_QUOTAS].map(([quotaName, value]) => {
      const code = quotaCode(quotaName);
      return {
        ServiceCode: BEDROCK_SERVICE_CODE,
        ServiceName: 'Amazon Bedrock',
        QuotaArn: `arn:aws:servicequotas:${region}:000000000000:${BEDROCK_SERVICE_CODE}/${code}`,
        QuotaCode: code,
        QuotaName: quotaName,
        Value: value,
        Unit: 'None',
        Adjustable: true,
        GlobalQuota: false,
      };
    });
  }

  /** Answers one JSON 1.1 operation, named by the part of `X-Amz-Target` after the prefix. */
  answer(operation: string, input: Record<string, unknown>): unknown {
    const serviceCode = input.ServiceCode;
    if (typeof serviceCode !== 'string' || serviceCode === '')
      throw new ServiceQuotasError('IllegalArgumentException', 'ServiceCode is required.');
    const quotas = serviceCode === BEDROCK_SERVICE_CODE ? this.quotas : [];
    switch (operation) {
      case 'ListServiceQuotas':
        return listPage(quotas, input);
      case 'GetServiceQuota': {
        const quota = quotas.find((each) => each.QuotaCode === input.QuotaCode);
        if (quota === undefined)
          throw new ServiceQuotasError('NoSuchResourceException', `No quota ${String(input.QuotaCode)}.`);
        return { Quota: quota };
      }
      default:
        throw new ServiceQuotasError('IllegalArgumentException', `The stand-in does not serve ${operation}.`);
    }
  }
}

function listPage(quotas: readonly ListedQuota[], input: Record<string, unknown>) {
  const size = typeof input.MaxResults === 'number' ? Math.min(input.MaxResults, PAGE_SIZE) : PAGE_SIZE;
  const token = input.NextToken;
  const start = token === undefined ? 0 : Number(token);
  if (!Number.isInteger(start) || start < 0 || start > quotas.length)
    throw new ServiceQuotasError('InvalidPaginationTokenException', 'Invalid NextToken.');
  const end = start + size;
  return {
    Quotas: quotas.slice(start, end),
    ...(end < quotas.length ? { NextToken: String(end) } : {}),
  };
}

/** A stable code of Service Quotas' form (`L-` and 8 hex digits) for a quota name. */
function quotaCode(name: string): string {
  return `L-${createHash('sha256').update(name).digest('hex').slice(0, 8).toUpperCase()}`;
}
