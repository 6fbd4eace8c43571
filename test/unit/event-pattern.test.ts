import { describe, expect, it } from 'vitest';
import { type EventPattern, matchesPattern } from '../../local/glue/event-pattern.ts';
import { inputObjectCreatedPattern } from '../../shared/events/patterns.ts';
import { readJsonFixture } from '../support/factories.ts';

type S3Event = { detail: { bucket: { name: string }; object: { key: string } }; source: string };

function s3Event(edit: (event: S3Event) => void = () => {}): S3Event {
  const event = readJsonFixture<S3Event>('s3-object-created.json');
  edit(event);
  return event;
}

describe('the pipeline rule pattern (inputObjectCreatedPattern)', () => {
  const pattern = inputObjectCreatedPattern('bedrock-batch-example');

  it.each<[string, S3Event, boolean]>([
    ['the fixture event: an encoded key under inputs/', s3Event(), true],
    [
      'a key with spaces and non-ASCII as sent',
      s3Event((event) => {
        event.detail.object.key = 'inputs/Q3 résumé.jsonl';
      }),
      true,
    ],
    [
      'a nested key',
      s3Event((event) => {
        event.detail.object.key = 'inputs/a/b/c.jsonl';
      }),
      true,
    ],
    [
      'an output object',
      s3Event((event) => {
        event.detail.object.key = 'outputs/a.jsonl.out';
      }),
      false,
    ],
    [
      'a manifest',
      s3Event((event) => {
        event.detail.object.key = 'outputs/a.jsonl.manifest.json.out';
      }),
      false,
    ],
    [
      'a key that is not .jsonl (the enqueue function answers it with a failed job)',
      s3Event((event) => {
        event.detail.object.key = 'inputs/notes.txt';
      }),
      true,
    ],
    [
      'a key with inputs/ not at the start',
      s3Event((event) => {
        event.detail.object.key = 'archive/inputs/a.jsonl';
      }),
      false,
    ],
    [
      'another bucket',
      s3Event((event) => {
        event.detail.bucket.name = 'someone-else';
      }),
      false,
    ],
    [
      'another source',
      s3Event((event) => {
        event.source = 'aws.s3.fake';
      }),
      false,
    ],
  ])('%s: %s', (_case, event, expected) => {
    expect(matchesPattern(pattern, event)).toBe(expected);
  });
});

describe('matchesPattern', () => {
  const event = {
    source: 'bedrock-batch',
    'detail-type': 'Batch Job Completed',
    detail: {
      counts: { failed: 0, total: 12 },
      model: 'Opus-4.6',
      tags: ['nightly', 'finance'],
      empty: null,
    },
  };

  it.each<[string, EventPattern, boolean]>([
    ['a literal', { source: ['bedrock-batch'] }, true],
    ['any of several literals', { source: ['x', 'bedrock-batch'] }, true],
    ['a wrong literal', { source: ['x'] }, false],
    ['a nested field', { detail: { counts: { total: [12] } } }, true],
    ['a missing field', { detail: { owner: ['me'] } }, false],
    ['prefix', { 'detail-type': [{ prefix: 'Batch Job' }] }, true],
    ['prefix ignoring case', { 'detail-type': [{ prefix: { 'equals-ignore-case': 'batch job' } }] }, true],
    ['suffix', { 'detail-type': [{ suffix: 'Failed' }] }, false],
    ['equals-ignore-case', { detail: { model: [{ 'equals-ignore-case': 'opus-4.6' }] } }, true],
    ['wildcard', { 'detail-type': [{ wildcard: 'Batch*Completed' }] }, true],
    ['wildcard that must match the whole value', { 'detail-type': [{ wildcard: 'Batch*' }] }, true],
    ['wildcard that does not match', { 'detail-type': [{ wildcard: '*Failed' }] }, false],
    ['anything-but a value', { detail: { model: [{ 'anything-but': 'haiku-4.5' }] } }, true],
    ['anything-but the value', { detail: { model: [{ 'anything-but': ['Opus-4.6'] }] } }, false],
    ['anything-but a prefix', { detail: { model: [{ 'anything-but': { prefix: 'Opus' } }] } }, false],
    ['numeric range', { detail: { counts: { total: [{ numeric: ['>', 10, '<=', 12] }] } } }, true],
    ['numeric equality', { detail: { counts: { failed: [{ numeric: ['=', 1] }] } } }, false],
    ['exists', { detail: { counts: [{ exists: true }] } }, true],
    ['exists false on a missing field', { detail: { owner: [{ exists: false }] } }, true],
    ['exists false on a present field', { detail: { counts: [{ exists: false }] } }, false],
    ['null literal', { detail: { empty: [null] } }, true],
    ['an array value with one matching element', { detail: { tags: ['finance'] } }, true],
    [
      '$or with one branch matching',
      { $or: [{ source: ['x'] }, { detail: { counts: { failed: [0] } } }] },
      true,
    ],
    ['$or with no branch matching', { $or: [{ source: ['x'] }, { source: ['y'] }] }, false],
  ])('%s', (_case, pattern, expected) => {
    expect(matchesPattern(pattern, event)).toBe(expected);
  });

  it.each<[string, EventPattern]>([
    ['an unknown matcher', { source: [{ regex: '.*' }] }],
    ['a bare string value', { source: 'bedrock-batch' }],
    ['an unknown numeric operator', { detail: { counts: { total: [{ numeric: ['!=', 3] }] } } }],
  ])('refuses %s as an invalid pattern', (_case, pattern) => {
    expect(() => matchesPattern(pattern, event)).toThrow(/Invalid event pattern/);
  });
});
