import { createReadStream } from 'node:fs';
import { defaultCatalog, type EndpointKind } from '../../shared/catalog/catalog.ts';
import { costOfRequest, nanoUsdToUsd } from '../../shared/cost/cost.ts';
import { PipelineError } from '../../shared/errors.ts';
import { InMemoryRecordIdRegistry, readRecords } from '../../shared/input/read-records.ts';
import { buildInvocation, type Invocation } from '../../shared/request/build-request.ts';
import { knownRegion, parseCommandLine } from '../arguments.ts';
import { checkInputFile } from '../input-file.ts';
import type { Terminal } from '../terminal.ts';
import { checkModelChoice, fileMetadata, modelOptions } from './run.ts';

export const PLAN_USAGE =
  'bedrock-batch plan <file.jsonl> [--model m] [--region r] [--endpoint e] [--max-tokens n] [--json]';

interface PlanError {
  readonly line: number;
  readonly recordId: string | undefined;
  readonly code: string;
  readonly message: string;
}

/**
 * Like `terraform plan`: reads every line, makes no call, and reports what a run would do: the errors by
 * line, token estimates, which records need the 1M window, and the cost range on the global and regional
 * endpoints (low: the low input estimate and no output; high: the high estimate and every max_tokens used).
 */
export async function planCommand(args: string[], term: Terminal): Promise<number> {
  const { values, positionals } = parseCommandLine(
    args,
    { ...modelOptions, json: { type: 'boolean', default: false } },
    ['<file.jsonl>'],
  );
  const file = await checkInputFile(positionals[0]);
  const job = checkModelChoice(fileMetadata(values), knownRegion(values.region));
  const plan = await planFile(file, job);
  if (values.json) term.out(`${JSON.stringify(plan, null, 2)}\n`);
  else printPlan(plan, term);
  return 0;
}

type Plan = Awaited<ReturnType<typeof planFile>>;

/** Every line of the file, validated and built into its call as a run would, and nothing sent. */
async function planFile(file: string, job: Parameters<typeof buildInvocation>[1]) {
  const tally = new PlanTally();
  for await (const { result } of readRecords(createReadStream(file), {
    maxLineBytes: defaultCatalog.requestBodyLimitBytes,
    registry: new InMemoryRecordIdRegistry(),
  })) {
    tally.records += 1;
    if (!result.ok) {
      const { lineNumber, recordId, code, message } = result.error;
      tally.errors.push({ line: lineNumber, recordId, code, message });
      continue;
    }
    try {
      tally.add(buildInvocation(result.record, job), result.record.lineNumber);
    } catch (error) {
      if (!(error instanceof PipelineError)) throw error;
      const { lineNumber, recordId } = result.record;
      tally.errors.push({ line: lineNumber, recordId, code: error.code, message: error.message });
    }
  }
  return tally.plan(file);
}

/** What a plan adds up as it reads. */
class PlanTally {
  records = 0;
  readonly errors: PlanError[] = [];
  private readonly longContextLines: number[] = [];
  private readonly models: Record<string, number> = {};
  private readonly cost = { global: { low: 0, high: 0 }, regional: { low: 0, high: 0 } };
  private inputLow = 0;
  private inputHigh = 0;
  private maxOutput = 0;

  add(invocation: Invocation, lineNumber: number): void {
    this.inputLow += invocation.estimate.lower;
    this.inputHigh += invocation.estimate.upper;
    this.maxOutput += invocation.maxTokens;
    this.models[invocation.modelId] = (this.models[invocation.modelId] ?? 0) + 1;
    if (invocation.longContext) this.longContextLines.push(lineNumber);
    const model = invocation.resolved.model;
    for (const endpoint of ['global', 'regional'] as const satisfies readonly EndpointKind[]) {
      const { lower, upper } = invocation.estimate;
      this.cost[endpoint].low += costOfRequest(
        { input_tokens: lower, output_tokens: 0 },
        model,
        endpoint,
      ).total;
      this.cost[endpoint].high += costOfRequest(
        { input_tokens: upper, output_tokens: invocation.maxTokens },
        model,
        endpoint,
      ).total;
    }
  }

  plan(file: string) {
    const { cost } = this;
    return {
      file,
      records: this.records,
      valid: this.records - this.errors.length,
      errors: this.errors,
      models: this.models,
      inputTokens: { low: this.inputLow, high: this.inputHigh },
      maxOutputTokens: this.maxOutput,
      longContextRecords: this.longContextLines,
      estimatedCostUsd: {
        global: { low: nanoUsdToUsd(cost.global.low), high: nanoUsdToUsd(cost.global.high) },
        regional: { low: nanoUsdToUsd(cost.regional.low), high: nanoUsdToUsd(cost.regional.high) },
      },
      pricesCheckedOn: defaultCatalog.pricesCheckedOn,
    };
  }
}

function printPlan(plan: Plan, term: Terminal): void {
  const { errors, estimatedCostUsd: cost } = plan;
  const count = (value: number) => value.toLocaleString('en-US');
  term.out(
    `${term.bold(`Plan for ${plan.file}`)}: ${plan.records} records, ${plan.valid} valid, ${errors.length} with errors\n`,
  );
  for (const error of errors)
    term.out(`  ${term.red(`line ${error.line}`)} ${error.code}: ${error.message}\n`);
  for (const [modelId, records] of Object.entries(plan.models))
    term.out(`  ${records} records to ${modelId}\n`);
  term.out(
    `  input tokens ${count(plan.inputTokens.low)} to ${count(plan.inputTokens.high)}, output at most ${count(plan.maxOutputTokens)}\n`,
  );
  if (plan.longContextRecords.length > 0)
    term.out(`  1M context for lines ${plan.longContextRecords.join(', ')}\n`);
  term.out(
    `  estimated cost: global $${cost.global.low} to $${cost.global.high}, ` +
      `regional $${cost.regional.low} to $${cost.regional.high} (prices of ${plan.pricesCheckedOn})\n`,
  );
}
