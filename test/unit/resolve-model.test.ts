import { describe, expect, it } from 'vitest';
import { defaultCatalog } from '../../shared/catalog/catalog.ts';
import { ModelSelectionError } from '../../shared/errors.ts';
import { type ModelSelection, resolveModel } from '../../shared/models/resolve-model.ts';
import { thrown } from '../support/thrown.ts';

const resolutionError = (selection: ModelSelection): ModelSelectionError =>
  thrown(ModelSelectionError, () => resolveModel(selection));

describe('resolveModel', () => {
  describe.each([
    // name forms people bring
    [
      'global.anthropic.claude-opus-4-6-v1',
      undefined,
      'us-west-2',
      'global.anthropic.claude-opus-4-6-v1',
      'global',
    ],
    ['anthropic.claude-opus-4-6-v1', undefined, 'us-west-2', 'global.anthropic.claude-opus-4-6-v1', 'global'],
    ['opus-4.6', undefined, 'us-west-2', 'global.anthropic.claude-opus-4-6-v1', 'global'],
    ['claude-opus-4-6', undefined, 'eu-central-1', 'global.anthropic.claude-opus-4-6-v1', 'global'],
    [
      'claude-sonnet-4-5-20250929',
      'regional',
      'us-east-1',
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'regional',
    ],
    [
      'claude-sonnet-4-5',
      'regional',
      'eu-west-1',
      'eu.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'regional',
    ],
    ['claude-haiku-4-5', 'global', 'us-east-2', 'global.anthropic.claude-haiku-4-5-20251001-v1:0', 'global'],
    ['haiku-4.5', 'in-region', 'us-west-2', 'anthropic.claude-haiku-4-5-20251001-v1:0', 'in-region'],
    [
      'claude-sonnet-4-20250514',
      'regional',
      'ap-southeast-2',
      'apac.anthropic.claude-sonnet-4-20250514-v1:0',
      'regional',
    ],
    ['sonnet-4.5', 'regional', 'ap-northeast-1', 'jp.anthropic.claude-sonnet-4-5-20250929-v1:0', 'regional'],
    ['opus-4.6', 'regional', 'ap-south-1', 'apac.anthropic.claude-opus-4-6-v1', 'regional'],
    // prefixes decide the endpoint when the job sets none
    [
      'us.anthropic.claude-opus-4-6-v1',
      undefined,
      'us-west-2',
      'us.anthropic.claude-opus-4-6-v1',
      'regional',
    ],
    [
      'jp.anthropic.claude-opus-4-6-v1',
      undefined,
      'ap-northeast-3',
      'jp.anthropic.claude-opus-4-6-v1',
      'regional',
    ],
    // bare ids of the newer models, served through profiles only
    ['sonnet-4.6', undefined, 'us-west-2', 'global.anthropic.claude-sonnet-4-6', 'global'],
    ['anthropic.claude-opus-4-7', 'regional', 'eu-west-1', 'eu.anthropic.claude-opus-4-7', 'regional'],
    ['claude-sonnet-4-6', undefined, 'ap-northeast-1', 'global.anthropic.claude-sonnet-4-6', 'global'],
    // forgiving spelling: case, surrounding spaces, a dated id without ":0"
    ['  Opus-4.6 ', undefined, 'us-west-2', 'global.anthropic.claude-opus-4-6-v1', 'global'],
    [
      'anthropic.claude-sonnet-4-5-20250929-v1',
      'regional',
      'us-west-2',
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      'regional',
    ],
  ] as const)('%s with endpoint %s in %s', (model, endpoint, region, expectedId, expectedEndpoint) => {
    it(`calls ${expectedId}`, () => {
      // Act
      const resolved = resolveModel({ model, endpoint, region });

      // Assess
      expect(resolved.modelId).toBe(expectedId);
      expect(resolved.endpoint).toBe(expectedEndpoint);
      expect(resolved.region).toBe(region);
    });
  });

  describe.each([
    // Bedrock's availability: Sonnet 4.5 is not offered in APAC, Haiku 4.5 not in JP or APAC.
    [
      'sonnet-4.5',
      'regional',
      'ap-southeast-1',
      'MODEL_NOT_IN_REGION',
      /not available in APAC.*region in US/,
    ],
    ['sonnet-4.5', 'global', 'ap-south-1', 'MODEL_NOT_IN_REGION', /not available in APAC/],
    [
      'haiku-4.5',
      'regional',
      'ap-northeast-1',
      'MODEL_NOT_IN_REGION',
      /not available in JP.*opus-4\.6, sonnet-4\.5/,
    ],
    ['haiku-4.5', 'in-region', 'ap-south-1', 'MODEL_NOT_IN_REGION', /not available in APAC/],
    ['haiku-4.5', 'regional', 'ap-southeast-1', 'MODEL_NOT_IN_REGION', /not available in APAC/],
    [
      'au.anthropic.claude-opus-4-6-v1',
      undefined,
      'ap-southeast-2',
      'MODEL_NOT_IN_REGION',
      /not available in AU \(ap-southeast-2\).*apac\.anthropic\.claude-opus-4-6-v1/s,
    ],
    [
      'au.anthropic.claude-opus-4-6-v1',
      undefined,
      'ap-southeast-1',
      'PREFIX_REGION_MISMATCH',
      /"au\." inference profile is called from AU regions/,
    ],
    [
      'global.anthropic.claude-haiku-4-5-20251001-v1:0',
      undefined,
      'ap-northeast-3',
      'MODEL_NOT_IN_REGION',
      /JP/,
    ],
    // A model served through inference profiles only has no in-region endpoint.
    [
      'sonnet-4.6',
      'in-region',
      'us-east-1',
      'PROFILE_ONLY',
      /inference profiles only.*Use the global endpoint \(global\.anthropic\.claude-sonnet-4-6\) or US's \(us\.anthropic\.claude-sonnet-4-6\)/,
    ],
    // A geography prefix called from another geography.
    [
      'eu.anthropic.claude-opus-4-6-v1',
      undefined,
      'us-east-1',
      'PREFIX_REGION_MISMATCH',
      /us\.anthropic\.claude-opus-4-6-v1/,
    ],
    ['apac.anthropic.claude-opus-4-6-v1', undefined, 'ap-northeast-1', 'PREFIX_REGION_MISMATCH', /jp\./],
    // The endpoint policy wins over one id's prefix.
    [
      'global.anthropic.claude-opus-4-6-v1',
      'regional',
      'eu-west-1',
      'ENDPOINT_CONFLICT',
      /Drop the "global\." prefix/,
    ],
    [
      'us.anthropic.claude-opus-4-6-v1',
      'global',
      'us-east-1',
      'ENDPOINT_CONFLICT',
      /set the endpoint to regional/,
    ],
    // Region always explicit.
    ['opus-4.6', 'global', undefined, 'MISSING_REGION', /Always name the region explicitly/],
    ['opus-4.6', 'global', '  ', 'MISSING_REGION', /us-west-2/],
    ['opus-4.6', 'global', 'mars-north-1', 'UNKNOWN_REGION', /regions\.json/],
    // Names that are not models.
    [
      'claude-3-opus-20240229',
      'global',
      'us-west-2',
      'UNKNOWN_MODEL',
      /global\.anthropic\.claude-opus-4-6-v1/,
    ],
    ['anthropic.claude-opus-4-6', 'global', 'us-west-2', 'UNKNOWN_MODEL', /Known models: opus-4\.6/],
    [
      'arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-opus-4-6-v1',
      'global',
      'us-west-2',
      'UNKNOWN_MODEL',
      /ARNs are not accepted/,
    ],
  ] as const)('%s with endpoint %s in %s', (model, endpoint, region, code, fix) => {
    it(`is refused with ${code} and a fix`, () => {
      // Act
      const error = resolutionError({ model, endpoint, region });

      // Assess
      expect(error.code).toBe(code);
      expect(error.message).toMatch(fix);
    });
  });

  it('offers every catalog model from every region of the geographies it lists, and no other', () => {
    for (const model of defaultCatalog.models) {
      for (const region of defaultCatalog.knownRegions) {
        // Act
        const attempt = () => resolveModel({ model: model.key, region, endpoint: 'regional' });

        // Assess: through the narrowest of the region's geographies that offers the model.
        const keys = defaultCatalog.geographiesOfRegion(region).map((geography) => geography.key);
        const through = keys.find((key) => model.offeredIn.includes(key));
        if (through === undefined) expect(attempt).toThrow(ModelSelectionError);
        else expect(attempt().modelId).toBe(`${through}.${model.bedrockId}`);
      }
    }
  });

  it.each([
    ['sonnet-4.5', 'ap-southeast-2', 'au.anthropic.claude-sonnet-4-5-20250929-v1:0'],
    ['haiku-4.5', 'ap-southeast-4', 'au.anthropic.claude-haiku-4-5-20251001-v1:0'],
    ['opus-4.6', 'ap-southeast-2', 'apac.anthropic.claude-opus-4-6-v1'],
    ['apac.anthropic.claude-opus-4-6-v1', 'ap-southeast-4', 'apac.anthropic.claude-opus-4-6-v1'],
  ])(
    'calls %s from %s through %s: AU where the model is offered there, APAC otherwise',
    (name, region, id) => {
      expect(resolveModel({ model: name, region, endpoint: 'regional' }).modelId).toBe(id);
    },
  );
});
