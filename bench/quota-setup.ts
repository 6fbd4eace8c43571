/**
 * What every client of `npm run bench:quota` shares: the file, the model, the region, the scenarios, and how
 * a client's figures are read against the quota.
 */
import { quotaSeconds } from '../shared/budget/throughput.ts';
import { resolveModel } from '../shared/models/resolve-model.ts';

export const REGION = 'us-west-2';
export const MODEL = 'haiku-4.5';
export const MODEL_ID = resolveModel({ model: MODEL, region: REGION, endpoint: 'global' }).modelId;
export const MAX_TOKENS = 256;
export const OUTPUT_BURNDOWN = 5;

/** The clients, each run in a process of its own by bench/quota-clients.ts. */
export const CLIENTS = ['run', 'stack', 'strong', 'careful', 'naive'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** One quota and one latency: every client runs the same file against its own stand-in with these. */
export interface Scenario {
  readonly name: string;
  readonly tokensPerMinute: number;
  readonly records: number;
  /** The stand-in's latency factor: 1 answers at the catalog's latency for the model, 2 twice as slowly. */
  readonly latencyFactor: number;
}

/** About 100 input tokens each: a short ticket to summarise. */
export function prompts(records: number): string[] {
  return Array.from(
    { length: records },
    (_, index) =>
      `Summarise support ticket ${index} for the weekly report. The customer writes that the nightly export ` +
      `stopped after the upgrade, that retries did not help, and that the dashboard shows no errors. They ask ` +
      `for a workaround and for the root cause, and mention a deadline on Friday for their own report.`,
  );
}

/** The file as a user would drop it in: plain lines with an id and a prompt. */
export function inputFile(records: number): string {
  return `${prompts(records)
    .map((prompt, index) => JSON.stringify({ id: `t${index}`, prompt }))
    .join('\n')}\n`;
}

/** What one client measured. Times are seconds; `wholeJob` is upload to output, or first call to last answer. */
export interface ClientFigures {
  readonly wholeJobSeconds: number;
  /** From the first call's start to the last answer. */
  readonly callSpanSeconds: number;
  readonly tokensCharged: number;
  readonly calls: number;
  readonly throttledCalls: number;
  readonly recordsLost: number;
  readonly firstCallAfterUploadSeconds?: number;
  readonly outputAfterLastAnswerSeconds?: number;
  readonly perRecord?: Readonly<Record<string, number>>;
  readonly counters?: Readonly<Record<string, number>>;
}

export function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/** A client's figures as the results file reports them: quota use over the whole job and over its calls. */
export function reported(figures: ClientFigures, tokensPerMinute: number) {
  const minimum = quotaSeconds(figures.tokensCharged, tokensPerMinute);
  return {
    wholeJobSeconds: round(figures.wholeJobSeconds, 1),
    callSpanSeconds: round(figures.callSpanSeconds, 1),
    fixedCostSeconds: round(figures.wholeJobSeconds - figures.callSpanSeconds, 2),
    minimumSeconds: round(minimum, 1),
    quotaUse: round(minimum / figures.wholeJobSeconds, 4),
    quotaUseOverCalls: round(minimum / figures.callSpanSeconds, 4),
    calls: figures.calls,
    throttledCalls: figures.throttledCalls,
    throttledShare: round(figures.throttledCalls / Math.max(1, figures.calls), 4),
    recordsLost: figures.recordsLost,
    tokensCharged: figures.tokensCharged,
    ...(figures.firstCallAfterUploadSeconds === undefined
      ? {}
      : { firstCallAfterUploadSeconds: round(figures.firstCallAfterUploadSeconds, 2) }),
    ...(figures.outputAfterLastAnswerSeconds === undefined
      ? {}
      : { outputAfterLastAnswerSeconds: round(figures.outputAfterLastAnswerSeconds, 2) }),
    ...(figures.perRecord === undefined
      ? {}
      : {
          perRecord: Object.fromEntries(
            Object.entries(figures.perRecord).map(([name, value]) => [name, round(value, 3)]),
          ),
        }),
    ...(figures.counters === undefined ? {} : { counters: figures.counters }),
  };
}
