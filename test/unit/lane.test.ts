import { describe, expect, it } from 'vitest';
import { parseDeadlineHours, stagedRecordsLane, startingLane } from '../../shared/batch/lane.ts';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { mergeCatalog } from '../../shared/catalog/user-catalog.ts';
import type { JobSettings } from '../../shared/core/model.ts';
import { ConfigurationError } from '../../shared/errors.ts';
import { jobSettingsFrom } from '../../shared/pipeline/job.ts';

const defaults: JobSettings = {
  model: 'opus-4.6',
  region: 'us-west-2',
  endpoint: 'global',
  defaultMaxTokens: 1_024,
};

describe('a deadline', () => {
  it.each([
    ['90s', 0.025],
    ['30m', 0.5],
    ['6h', 6],
    ['1.5h', 1.5],
    ['2d', 48],
    ['36H', 36],
  ])('reads %s as %d hours', (text, hours) => {
    expect(parseDeadlineHours(text)).toBe(hours);
  });

  it.each(['6', 'six hours', '0h', '-2h', '3w', ''])('refuses %j', (text) => {
    expect(parseDeadlineHours(text)).toBeUndefined();
  });
});

const noBatchForHaiku = mergeCatalog(
  { models: [{ key: 'haiku-4.5', batchInference: false }] },
  'no-batch.json',
);

describe('the lane a job starts in', () => {
  it.each([
    ['no lane', {}, 'on-demand'],
    ['on-demand', { lane: 'on-demand' as const }, 'on-demand'],
    ['batch, even with a short deadline', { lane: 'batch' as const, deadlineHours: 2 }, 'staged'],
    ['auto without a deadline', { lane: 'auto' as const }, 'staged'],
    ['auto with a day to spare', { lane: 'auto' as const, deadlineHours: 24 }, 'staged'],
    ['auto with a deadline too short for batch', { lane: 'auto' as const, deadlineHours: 6 }, 'on-demand'],
  ])('%s: %s', (_case, settings, lane) => {
    expect(startingLane({ model: 'opus-4.6', ...settings }, defaultCatalog)).toBe(lane);
  });

  it.each([
    ['a model batch inference does not take', 'haiku-4.5', noBatchForHaiku],
    [
      'a model the catalog does not list',
      'us.anthropic.claude-opus-5',
      defaultCatalog.withUnknownModels(true),
    ],
  ])('is on demand for %s, whatever the lane', (_case, model, catalog) => {
    expect(startingLane({ model, lane: 'batch' }, catalog)).toBe('on-demand');
    expect(startingLane({ model, lane: 'auto' }, catalog)).toBe('on-demand');
  });

  it.each([
    [99, 'on-demand'],
    [100, 'batch'],
    [50_000, 'batch'],
  ])('%d staged records go to %s (minimum 100)', (records, lane) => {
    expect(stagedRecordsLane(records, defaultCatalog.batch.minimumRecordsPerJob)).toBe(lane);
  });
});

describe('lane and deadline as file options', () => {
  it('come from the S3 metadata over the deployment defaults', () => {
    // Act
    const settings = jobSettingsFrom({ lane: 'batch', deadline: '6h' }, { ...defaults, lane: 'auto' });

    // Assess
    expect(settings).toMatchObject({ lane: 'batch', deadlineHours: 6 });
  });

  it('fall back to the deployment defaults, and to none', () => {
    expect(jobSettingsFrom({}, { ...defaults, lane: 'auto', deadlineHours: 48 })).toMatchObject({
      lane: 'auto',
      deadlineHours: 48,
    });
    expect(jobSettingsFrom({}, defaults)).not.toHaveProperty('lane');
  });

  it.each([
    [{ lane: 'cheap' }, /file option lane must be one of on-demand, batch, auto/],
    [{ deadline: 'tomorrow' }, /file option deadline must be a duration such as 30m, 6h or 2d/],
    [
      { speed: 'fast' },
      /unknown file option speed \(use model, endpoint, endpoints, regions, max-tokens, lane, deadline, cache, tier, expires-at, max-error-rate, max-cost\)/,
    ],
  ])('refuse %j', (metadata, message) => {
    expect(() => jobSettingsFrom(metadata, defaults)).toThrow(ConfigurationError);
    expect(() => jobSettingsFrom(metadata, defaults)).toThrow(message);
  });
});
