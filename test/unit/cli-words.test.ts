import { describe, expect, it } from 'vitest';
import { progressReporter } from '../../cli/commands/run.ts';
import { count, duration, number, usd } from '../../cli/words.ts';
import type { JobProgress } from '../../local/run-job.ts';
import { newJobRecord } from '../../shared/pipeline/job.ts';
import { jobDefaults } from '../support/pipeline-harness.ts';
import { recordingTerminal } from '../support/terminal.ts';

describe('numbers as the CLI writes them', () => {
  it.each([
    [() => count(1, 'record'), '1 record'],
    [() => count(1_200, 'record'), '1,200 records'],
    [() => count(0, 'record'), '0 records'],
    [() => number(1_234_567), '1,234,567'],
    [() => usd(0.0299), '$0.0299'],
    [() => usd(-0.0079), '-$0.0079'],
    [() => usd(-0.00001), '$0.0000'],
    [() => duration(7.94), '7.9 s'],
    [() => duration(45.2), '45 s'],
    [() => duration(200), '3 min'],
    [() => duration(12_600), '3.5 h'],
    [() => duration(200_000), '2.3 d'],
  ])('%s is %s', (write, expected) => {
    // Act
    const text = write();

    // Assess
    expect(text).toBe(expected);
  });
});

describe("a run's progress off a terminal", () => {
  const job = (done: number) => ({
    ...newJobRecord('job-1', { bucket: 'b', key: 'inputs/a.jsonl' }, jobDefaults, '2026-11-25T10:00:00.000Z'),
    totalRecords: 100,
    doneRecords: done,
  });
  const at = (elapsedMs: number, done: number): JobProgress => ({
    job: job(done),
    retries: 0,
    bedrockThrottles: 0,
    elapsedMs,
  });

  it('is a line when the counts change, and one every 10 s while they do not, each with the time and an ETA', () => {
    // Prepare
    const term = recordingTerminal();
    const report = progressReporter(term);

    // Act: every half second, the counts moving at 1 s and then standing still for 12 s.
    for (const [elapsedMs, done] of [
      [500, 0],
      [1_000, 0],
      [1_500, 10],
      [2_000, 10],
      [6_000, 10],
      [11_000, 10],
      [11_500, 10],
      [13_500, 10],
    ] as const)
      report(at(elapsedMs, done));

    // Assess
    expect(term.stdout().trimEnd().split('\n')).toEqual([
      '0/100 records · 0 succeeded · 0 failed · tokens in 0 out 0 · 0 retried · 0 throttled · $0.0000 · 0.5 s',
      '10/100 records · 0 succeeded · 0 failed · tokens in 0 out 0 · 0 retried · 0 throttled · $0.0000 · ETA 14 s · 1.5 s',
      '10/100 records · 0 succeeded · 0 failed · tokens in 0 out 0 · 0 retried · 0 throttled · $0.0000 · ETA 104 s · 11.5 s',
    ]);
  });

  it('says when the quota holds the job up: the records to go and when tokens come, not for a wait of a moment', () => {
    // Prepare
    const term = recordingTerminal();
    const report = progressReporter(term);

    // Act
    report({ ...at(1_000, 10), tokenWaitSeconds: 3 });
    report({ ...at(2_000, 20), tokenWaitSeconds: 67 });

    // Assess
    const [brief, waiting] = term.stdout().trimEnd().split('\n');
    expect(brief).not.toContain('waiting');
    expect(waiting).toContain(' · waiting for tokens: 80 records to go, tokens in about 67 s · ETA ');
  });
});
