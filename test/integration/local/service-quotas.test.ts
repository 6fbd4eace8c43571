import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  GetServiceQuotaCommand,
  type ServiceQuota as ListedQuota,
  ListServiceQuotasCommand,
  paginateListServiceQuotas,
  ServiceQuotasClient,
} from '@aws-sdk/client-service-quotas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceQuotasSource } from '../../../functions/adapters/service-quotas.ts';
import { type BedrockStandIn, startBedrockStandIn } from '../../../local/bedrock/stand-in.ts';
import { defaultCatalog } from '../../../shared/catalog/catalog.ts';
import { poolName, poolsFor } from '../../../shared/quotas/pools.ts';
import { readPoolQuotas } from '../../../shared/quotas/service-quotas.ts';
import { LOCAL_CREDENTIALS } from '../../support/bedrock-clients.ts';
import { runCli } from '../../support/cli.ts';

const HAIKU = 'anthropic.claude-haiku-4-5-20251001-v1:0';

let standIn: BedrockStandIn;
let work = '';
beforeAll(async () => {
  // An account whose global Haiku quota was raised and whose in-region one is 0.
  standIn = await startBedrockStandIn({
    region: 'us-east-1',
    speed: 0,
    quota: { tokensPerMinute: 400_000 },
    quotaByModel: {
      [`global.${HAIKU}`]: { tokensPerMinute: 3_000_000 },
      [HAIKU]: { tokensPerMinute: 0, tokensPerDay: 500_000_000 },
    },
  });
  work = await mkdtemp(path.join(tmpdir(), 'service-quotas-'));
});
afterAll(async () => {
  await standIn.close();
  await rm(work, { recursive: true, force: true });
});

function client(region = standIn.region) {
  return new ServiceQuotasClient({
    region,
    endpoint: standIn.endpoint,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
}

describe("the stand-in's Service Quotas, through the official client", () => {
  it('lists its own quotas in pages, among those of other models, and gets one by code', async () => {
    // Prepare
    const sdk = client();

    // Act
    const pages: ListedQuota[][] = [];
    for await (const page of paginateListServiceQuotas(
      { client: sdk, pageSize: 3 },
      { ServiceCode: 'bedrock' },
    ))
      pages.push(page.Quotas ?? []);
    const global = pages
      .flat()
      .find(
        (quota) =>
          quota.QuotaName ===
          'Global cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5',
      );
    const got = await sdk.send(
      new GetServiceQuotaCommand({ ServiceCode: 'bedrock', QuotaCode: global?.QuotaCode }),
    );

    // Assess
    expect(pages.length).toBeGreaterThan(2);
    expect(pages.every((page) => page.length > 0 && page.length <= 3)).toBe(true);
    expect(pages.flat().some((quota) => quota.QuotaName?.includes('Amazon Nova Pro'))).toBe(true);
    expect(global).toMatchObject({ Value: 3_000_000, QuotaCode: expect.stringMatching(/^L-[0-9A-F]{8}$/) });
    expect(got.Quota).toEqual(global);
    sdk.destroy();
  });

  it.each([
    [
      'an unknown quota code',
      new GetServiceQuotaCommand({ ServiceCode: 'bedrock', QuotaCode: 'L-00000000' }),
      'NoSuchResourceException',
    ],
    [
      'a bad page token',
      new ListServiceQuotasCommand({ ServiceCode: 'bedrock', NextToken: 'x' }),
      'InvalidPaginationTokenException',
    ],
  ])('answers %s with its error', async (_case, command, name) => {
    // Prepare
    const sdk = client();

    // Act
    const error = await sdk.send(command as ListServiceQuotasCommand).catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toMatchObject({ name });
    sdk.destroy();
  });

  it('refuses a request signed for another region, as it refuses Bedrock calls', async () => {
    // Prepare
    const sdk = client('us-west-2');

    // Act
    const error = await sdk
      .send(new ListServiceQuotasCommand({ ServiceCode: 'bedrock' }))
      .catch((thrown: unknown) => thrown);

    // Assess
    expect(error).toMatchObject({ name: 'UnrecognizedClientException' });
    sdk.destroy();
  });
});

describe('reading the pools of a model from Service Quotas', () => {
  it('reads every page, matches each endpoint kind by name, and leaves out the pool whose quota is 0', async () => {
    // Prepare
    const haiku = defaultCatalog.findModel('haiku-4.5');
    if (haiku === undefined) throw new Error('no Haiku 4.5 in the catalog');
    const { pools } = poolsFor(haiku, {
      endpoints: ['global', 'regional', 'in-region'],
      regions: ['us-east-1'],
    });
    const source = new ServiceQuotasSource({ endpoint: standIn.endpoint, credentials: LOCAL_CREDENTIALS });

    // Act
    const reading = await readPoolQuotas(pools, source, { fallback: 1, share: 0.9 });
    source.destroy();

    // Assess
    expect(
      reading.quotas.map((quota) => [poolName(quota.pool), quota.tokensPerMinute, quota.tokensPerDay]),
    ).toEqual([
      [`us-east-1#global.${HAIKU}`, 3_000_000, 1_000_000_000],
      [`us-east-1#us.${HAIKU}`, 400_000, 1_000_000_000],
    ]);
    expect(reading.quotas[0]?.usableTokensPerMinute).toBe(2_700_000);
    expect(reading.leftOut.map(({ pool, reason }) => [pool.endpoint, reason])).toEqual([
      ['in-region', expect.stringContaining('is 0 in us-east-1')],
    ]);
  });
});

describe('bedrock-batch quotas', () => {
  async function resourcesFile(): Promise<string> {
    const file = path.join(work, 'local.json');
    const endpoint = standIn.endpoint;
    await writeFile(
      file,
      JSON.stringify({
        region: standIn.region,
        bucket: 'unused',
        tableName: 'unused',
        recordQueueUrl: 'unused',
        recordDlqUrl: 'unused',
        endpoints: { s3: endpoint, sqs: endpoint, dynamodb: endpoint, bedrock: endpoint },
        credentials: LOCAL_CREDENTIALS,
      }),
    );
    return file;
  }

  it("prints each pool's quota, the name it matched, what the share spends and the pools left out", async () => {
    // Act
    const result = await runCli([
      'quotas',
      '--model',
      'haiku-4.5',
      '--region',
      'us-east-1',
      '--quota-share',
      '0.5',
      '--resources',
      await resourcesFile(),
    ]);

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `us-east-1       global     global.${HAIKU}: 3,000,000 tokens a minute, 1,000,000,000 a day; uses 1,500,000. "Global cross-region model inference tokens per minute for Anthropic Claude Haiku 4.5"`,
    );
    expect(result.stdout).toMatch(
      /in-region .*: left out, its quota "On-demand model inference tokens per minute for Anthropic Claude Haiku 4.5" is 0/,
    );
    expect(result.stdout).toContain('in all: 1,700,000 tokens a minute over 2 pools');
  }, 60_000);

  it('says as JSON where each figure came from, falling back with a warning where Service Quotas cannot be read', async () => {
    // Act: the stand-in serves us-east-1 only, so us-west-2 cannot be read.
    const result = await runCli([
      'quotas',
      '--model',
      'haiku-4.5',
      '--endpoints',
      'global',
      '--regions',
      'us-east-1+us-west-2',
      '--json',
      '--resources',
      await resourcesFile(),
    ]);

    // Assess
    expect(result.code).toBe(0);
    const [haiku] = JSON.parse(result.stdout);
    expect(haiku.pools.map((pool: { region: string; origin: string }) => [pool.region, pool.origin])).toEqual(
      [
        ['us-east-1', 'service-quotas'],
        ['us-west-2', 'fallback'],
      ],
    );
    expect(haiku.pools[1].warning).toMatch(/could not be read in us-west-2/);
  }, 60_000);

  it.each([
    [['quotas', '--model', 'haiku-4.5'], /No region was given/],
    [['quotas', '--region', 'us-east-1', '--endpoints', 'everywhere'], /not a list of endpoint kinds/],
    [
      ['quotas', '--regions', 'us-east-1,eu-west-1', '--endpoints', 'regional'],
      /outside US .* may not run globally/,
    ],
    [
      ['quotas', '--region', 'us-east-1', '--quota-share', '2'],
      /--quota-share must be above 0 and at most 1/,
    ],
  ])(
    'refuses %j with a message that says what to do',
    async (args, message) => {
      // Act
      const result = await runCli(args);

      // Assess
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    },
    60_000,
  );
});
