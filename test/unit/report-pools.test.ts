import { describe, expect, it } from 'vitest';
import { type ReportManifest, renderReport } from '../../cli/report.ts';
import { NO_RETRIES } from '../../shared/core/retries.ts';
import { JobStatsCollector } from '../../shared/pipeline/job-stats.ts';

const HAIKU = 'anthropic.claude-haiku-4-5-20251001-v1:0';

/** A manifest's pool, answered `records` records, at `tokensPerMinute` read from Service Quotas. */
function pool(region: string, modelId: string, records: number, tokensPerMinute: number) {
  return {
    region,
    modelId,
    endpoint: modelId.startsWith('global.') ? 'global' : 'regional',
    records,
    inputTokens: records * 10,
    outputTokens: records * 20,
    cacheWriteTokens: 0,
    cacheReadTokens: 0,
    estimatedCostUsd: records / 1_000,
    quota: {
      tokensPerMinute,
      tokensPerDay: null,
      usableTokensPerMinute: tokensPerMinute,
      origin: 'service-quotas' as const,
      matched: [],
    },
  };
}

const basics: ReportManifest = {
  totalRecordCount: 150,
  successRecordCount: 150,
  errorRecordCount: 0,
  inputTokenCount: 1_500,
  outputTokenCount: 3_000,
  estimatedCostUsd: 0.15,
};

describe('the report of a file spread over quota pools', () => {
  it('lists each pool with the quota it was spent by and its records, and the pools left out with the reason', () => {
    // Prepare
    const manifest: ReportManifest = {
      ...basics,
      pools: [pool('us-west-2', `global.${HAIKU}`, 100, 6_000), pool('us-east-1', `us.${HAIKU}`, 50, 3_000)],
      poolsLeftOut: [
        {
          region: 'us-east-1',
          endpoint: 'global',
          modelId: `global.${HAIKU}`,
          reason: 'its quota is 0 in us-east-1; ask for an increase in Service Quotas to use it.',
        },
      ],
    };

    // Act
    const html = renderReport(manifest);

    // Assess
    expect(html).toContain('<h2>Quota pools</h2>');
    expect(html).toMatch(
      new RegExp(
        `<tr data-pool="us-west-2#global\\.${HAIKU.replaceAll('.', '\\.')}"><td>[^<]+</td><td>6,000 \\(service-quotas\\)</td><td>100</td>`,
      ),
    );
    expect(html).toContain(
      `data-pool-left-out="us-east-1#global.${HAIKU}">Left out: us-east-1 global.${HAIKU}: its quota is 0`,
    );
  });

  it('says nothing of pools for a file that used one', () => {
    expect(
      renderReport({ ...basics, pools: [pool('us-west-2', `global.${HAIKU}`, 150, 6_000)] }),
    ).not.toContain('Quota pools');
  });
});

describe('the report of a job with failed records', () => {
  it('lists each error code with its records and the first line that has it, commonest first, escaped', () => {
    // Prepare
    const manifest: ReportManifest = {
      ...basics,
      successRecordCount: 146,
      errorRecordCount: 4,
      stats: {
        ...new JobStatsCollector(0).summary({ retries: NO_RETRIES }),
        errors: [
          { code: 'ValidationException', records: 3, firstLine: 12 },
          { code: '<INVALID_JSON>', records: 1, firstLine: 7 },
        ],
      },
    };

    // Act
    const html = renderReport(manifest);

    // Assess
    expect(html).toContain('<h2>Failed records</h2>');
    expect(html).toContain(
      '<tr data-error-code="ValidationException"><td>ValidationException</td><td>3</td><td>12</td></tr>',
    );
    expect(html).toContain('<td>&#60;INVALID_JSON&#62;</td><td>1</td><td>7</td>');
    expect(html.indexOf('ValidationException')).toBeLessThan(html.indexOf('INVALID_JSON'));
    expect(renderReport(basics)).not.toContain('Failed records');
  });
});

describe('the report of a canceled job', () => {
  it('says why and where it stopped, and names the models its records went to, not the file default', () => {
    // Prepare
    const manifest: ReportManifest = {
      ...basics,
      status: 'canceled',
      reason: 'its spending cap of $0.1 was reached ($0.12 spent)',
      model: 'opus-4.6',
      successRecordCount: 90,
      errorRecordCount: 10,
      canceledRecordCount: 50,
      stats: {
        ...new JobStatsCollector(0).summary({ retries: NO_RETRIES }),
        perModel: [
          {
            modelId: `global.${HAIKU}`,
            records: 80,
            inputTokens: 0,
            outputTokens: 0,
            cacheWriteTokens: 0,
            cacheReadTokens: 0,
            estimatedCostUsd: 0.1,
          },
          {
            modelId: 'global.anthropic.claude-opus-4-6-v1',
            records: 20,
            inputTokens: 0,
            outputTokens: 0,
            cacheWriteTokens: 0,
            cacheReadTokens: 0,
            estimatedCostUsd: 0.02,
          },
        ],
      },
    };

    // Act
    const html = renderReport(manifest);

    // Assess
    expect(html).toContain(
      '<p class="canceled" data-cancel-point>Canceled because its spending cap of $0.1 was reached ($0.12 spent): 100 of 150 records had finished; 50 were canceled.</p>',
    );
    expect(html).toContain(
      `<div class="models" data-models>models global.${HAIKU} (80), global.anthropic.claude-opus-4-6-v1 (20)</div>`,
    );
  });
});
