/**
 * `npm run bench:quota`: time to results under a Bedrock token quota, the pipeline against the scripts users
 * would write instead. Each client runs in a process of its own against its own Bedrock stand-in with the
 * same quota, answering at the model's catalog latency (bench/quota-clients.ts says what each client is):
 *   1. three scenarios, one after another: 100,000 tokens a minute at the catalog latency and at twice it,
 *      and 30,000 tokens a minute, every client side by side in each;
 *   2. the first scenario again with a busy loop holding one core, for `run`, the stack and the strong script;
 *   3. the local ceiling: `run --speed 0` with a huge quota, records a second over 20,000 plain records.
 * Quota use is the quota's own minimum time for the tokens charged over the whole job (upload to output for
 * the pipeline, first call to last answer for a script). Written to bench/results/quota.json.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { answerSeconds, defaultCatalog } from '../shared/catalog/catalog.ts';
import {
  CLIENTS,
  type ClientFigures,
  type ClientName,
  MAX_TOKENS,
  MODEL,
  MODEL_ID,
  reported,
  type Scenario,
} from './quota-setup.ts';

const SCENARIOS: readonly Scenario[] = [
  { name: '100k TPM', tokensPerMinute: 100_000, records: 1_200, latencyFactor: 1 },
  { name: '100k TPM, 2x latency', tokensPerMinute: 100_000, records: 1_200, latencyFactor: 2 },
  { name: '30k TPM', tokensPerMinute: 30_000, records: 600, latencyFactor: 1 },
];
const BUSY: Scenario = { ...SCENARIOS[0], name: '100k TPM, one core busy' } as Scenario;
const BUSY_CLIENTS: readonly ClientName[] = ['run', 'stack', 'strong'];
const CEILING: Scenario = {
  name: 'ceiling',
  tokensPerMinute: 1_000_000_000,
  records: 20_000,
  latencyFactor: 0,
};

const TARGETS = {
  quotaUseAt100k: 0.98,
  quotaUseAt30k: 0.97,
  pointsBelowStrongScriptAtMost: 0.01,
  throttledShareAtMost: 0.005,
  receivesPerRecordAtMost: 1.1,
  fixedCostSecondsUnder: 3,
  busyPointsBelowQuietAtMost: 0.02,
  ceilingRecordsPerSecondAtLeast: 150,
};

const execFileAsync = promisify(execFile);

/** One client in its own process; its figures are the last line it prints. */
async function runClient(client: ClientName, scenario: Scenario): Promise<ClientFigures> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [
      '--import',
      'tsx',
      new URL('./quota-clients.ts', import.meta.url).pathname,
      client,
      JSON.stringify(scenario),
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const last = stdout.trim().split('\n').at(-1) ?? '{}';
  return JSON.parse(last) as ClientFigures;
}

async function runScenario(scenario: Scenario, clients: readonly ClientName[]) {
  const figures = await Promise.all(clients.map((client) => runClient(client, scenario)));
  return {
    ...scenario,
    clients: Object.fromEntries(
      clients.map((client, index) => [
        client,
        reported(figures[index] as ClientFigures, scenario.tokensPerMinute),
      ]),
    ),
  };
}

type ScenarioResult = Awaited<ReturnType<typeof runScenario>>;

/** A process that keeps one core busy until it is stopped, as other work on a laptop or a shared runner does. */
function busyLoop(): { stop(): void } {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return { stop: () => child.kill('SIGKILL') };
}

/** Prints a scenario's figures as soon as it is done, a line a client. */
function printed(result: ScenarioResult): ScenarioResult {
  process.stdout.write(`${result.name}:\n`);
  for (const [client, figures] of Object.entries(result.clients)) {
    process.stdout.write(
      `  ${client.padEnd(8)} ${String(figures.wholeJobSeconds).padStart(7)} s, quota use ${(figures.quotaUse * 100).toFixed(1)}% ` +
        `(${(figures.quotaUseOverCalls * 100).toFixed(1)}% over its calls, fixed ${figures.fixedCostSeconds} s), ` +
        `${figures.throttledCalls} of ${figures.calls} calls throttled, ${figures.recordsLost} lost` +
        `${figures.perRecord?.sqsReceives === undefined ? '' : `, ${figures.perRecord.sqsReceives} receives a record`}\n`,
    );
  }
  return result;
}

function targetsOf(result: ScenarioResult, quotaUseTarget: number) {
  const run = result.clients.run;
  const strong = result.clients.strong;
  if (run === undefined || strong === undefined) throw new Error(`${result.name}: run or strong missing`);
  return {
    quotaUse: run.quotaUse >= quotaUseTarget,
    withinOnePointOfStrongScript: run.quotaUse >= strong.quotaUse - TARGETS.pointsBelowStrongScriptAtMost,
    throttled: run.throttledShare <= TARGETS.throttledShareAtMost,
    noRecordLost: run.recordsLost === 0,
    receivesPerRecord:
      (run.perRecord?.sqsReceives ?? Number.POSITIVE_INFINITY) <= TARGETS.receivesPerRecordAtMost,
    fixedCost: run.fixedCostSeconds < TARGETS.fixedCostSecondsUnder,
  };
}

const model = defaultCatalog.findModel(MODEL);
process.stdout.write(
  `${MODEL_ID}, max_tokens ${MAX_TOKENS}, stand-in latency ${JSON.stringify(model?.latency)} ` +
    `(an answer of 76 tokens in ${model === undefined ? '?' : answerSeconds(model.latency, 76).toFixed(2)} s)\n` +
    `${SCENARIOS.map((scenario) => scenario.name).join(', ')}, one core busy, the ceiling; ${CLIENTS.join(', ')} side by side (about 30 minutes)...\n`,
);
// One scenario at a time: two pipelines and three scripts at once are what a quiet 2-core machine holds.
const quiet: ScenarioResult[] = [];
for (const scenario of SCENARIOS) quiet.push(printed(await runScenario(scenario, CLIENTS)));
const loop = busyLoop();
const busy = printed(await runScenario(BUSY, BUSY_CLIENTS).finally(() => loop.stop()));
const ceiling = printed(await runScenario(CEILING, ['run']));
const ceilingRun = ceiling.clients.run;
const recordsPerSecond = ceilingRun === undefined ? 0 : CEILING.records / ceilingRun.wholeJobSeconds;

const [at100k, at100kSlow, at30k] = quiet as [ScenarioResult, ScenarioResult, ScenarioResult];
const busyRun = busy.clients.run;
const targets = {
  [at100k.name]: targetsOf(at100k, TARGETS.quotaUseAt100k),
  [at100kSlow.name]: targetsOf(at100kSlow, TARGETS.quotaUseAt100k),
  [at30k.name]: targetsOf(at30k, TARGETS.quotaUseAt30k),
  busyWithinTwoPointsOfQuiet:
    busyRun !== undefined &&
    at100k.clients.run !== undefined &&
    busyRun.quotaUse >= at100k.clients.run.quotaUse - TARGETS.busyPointsBelowQuietAtMost,
  ceiling: recordsPerSecond >= TARGETS.ceilingRecordsPerSecondAtLeast,
};

process.stdout.write(`local ceiling: ${recordsPerSecond.toFixed(1)} records a second\n`);
process.stdout.write(`targets: ${JSON.stringify(targets)}\n`);

await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/quota.json', import.meta.url),
  `${JSON.stringify(
    {
      benchmark: 'quota',
      measuredAt: new Date().toISOString(),
      node: process.version,
      file: { model: MODEL_ID, maxTokens: MAX_TOKENS, standInLatency: model?.latency },
      scenarios: [...quiet, busy],
      ceiling: { ...ceiling, recordsPerSecond: Number(recordsPerSecond.toFixed(1)) },
      targets: TARGETS,
      met: targets,
    },
    null,
    2,
  )}\n`,
);
