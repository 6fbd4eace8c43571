import { paginateListServiceQuotas, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import {
  type AppliedQuota,
  BEDROCK_SERVICE_CODE,
  type QuotaSource,
} from '../../shared/quotas/service-quotas.ts';

export interface ServiceQuotasOptions {
  /** An endpoint override (the local cloud's stand-in serves Service Quotas); AWS's own when absent. */
  readonly endpoint?: string | undefined;
  readonly credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/**
 * Service Quotas through the SDK: Bedrock's quotas applied to the account in a region, every page of
 * ListServiceQuotas. One client per region, made when first asked.
 */
export class ServiceQuotasSource implements QuotaSource {
  private readonly clients = new Map<string, ServiceQuotasClient>();

  constructor(private readonly options: ServiceQuotasOptions = {}) {}

  async appliedQuotas(region: string): Promise<readonly AppliedQuota[]> {
    const quotas: AppliedQuota[] = [];
    const pages = paginateListServiceQuotas(
      { client: this.clientIn(region) },
      { ServiceCode: BEDROCK_SERVICE_CODE },
    );
    for await (const page of pages) {
      for (const quota of page.Quotas ?? []) {
        if (quota.QuotaName === undefined || quota.Value === undefined) continue;
        quotas.push({ name: quota.QuotaName, code: quota.QuotaCode ?? '', value: quota.Value });
      }
    }
    return quotas;
  }

  destroy(): void {
    for (const client of this.clients.values()) client.destroy();
  }

  private clientIn(region: string): ServiceQuotasClient {
    let client = this.clients.get(region);
    if (client === undefined) {
      const { endpoint, credentials } = this.options;
      client = new ServiceQuotasClient({
        region,
        ...(endpoint === undefined ? {} : { endpoint }),
        ...(credentials === undefined ? {} : { credentials }),
      });
      this.clients.set(region, client);
    }
    return client;
  }
}
