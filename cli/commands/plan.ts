import { createReadStream } from 'node:fs';
import { defaultCatalog, type EndpointKind } from '../../shared/catalog/catalog.ts';
import { costOfRequest, nanoUsdToUsd } from '../../shared/cost/cost.ts';
import { PipelineError } from '../../shared/errors.ts';
import { InMemoryRecordIdRegistry, readRecords } from '../../shared/input/read-records.ts';
import { buildInvocation } from '../../shared/request/build-request.ts';
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
  const metadata = fileMetadata(values);
  const job = checkModelChoice(metadata, knownRegion(values.region));

  const errors: PlanError[] = [];
  const longContextLines: number[] = [];
  const models: Record<string, number> = {};
  const cost = { global: { low: 0, high: 0 }, regional: { low: 0, high: 0 } };
  let records = 0;
  let inputLow = 0;
  let inputHigh = 0;
  let maxOutput = 0;
  const chunks = createReadStream(file);
  for await (const { result } of readRecords(chunks, {
    maxLineBytes: defaultCatalog.requestBodyLimitBytes,
    registry: new InMemoryRecordIdRegistry(),
  })) {
    records += 1;
    if (!result.ok) {
      errors.push({
        line: result.error.lineNumber,
        recordId: result.error.recordId,
        code: result.error.code,
        message: result.error.message,
      });
      continue;
    }
    try {
      const invocation = buildInvocation(result.record, job);
      inputLow += invocation.estimate.lower;
      inputHigh += invocation.estimate.upper;
      maxOutput += invocation.maxTokens;
      models[invocation.modelId] = (models[invocation.modelId] ?? 0) + 1;
      if (invocation.longContext) longContextLines.push(result.record.lineNumber);
      for (const endpoint of ['global', 'regional'] as const satisfies readonly EndpointKind[]) {
        const model = invocation.resolved.model;
        cost[endpoint].low += costOfRequest(
          { input_tokens: invocation.estimate.lower, output_tokens: 0 },
          model,
          endpoint,
        ).total;
        cost[endpoint].high += costOfRequest(
          { input_tokens: invocation.estimate.upper, output_tokens: invocation.maxTokens },
          model,
          endpoint,
        ).total;
      }
    } catch (error) {
      if (!(error instanceof PipelineError)) throw error;
      errors.push({
        line: result.record.lineNumber,
        recordId: result.record.recordId,
        code: error.code,
        message: error.message,
      });
    }
  }

  const plan = {
    file,
    records,
    valid: records - errors.length,
    errors,
    models,
    inputTokens: { low: inputLow, high: inputHigh },
    maxOutputTokens: maxOutput,
    longContextRecords: longContextLines,
    estimatedCostUsd: {
      global: { low: nanoUsdToUsd(cost.global.low), high: nanoUsdToUsd(cost.global.high) },
      regional: { low: nanoUsdToUsd(cost.regional.low), high: nanoUsdToUsd(cost.regional.high) },
    },
    pricesCheckedOn: defaultCatalog.pricesCheckedOn,
  };
  if (values.json) {
    term.out(`${JSON.stringify(plan, null, 2)}\n`);
  } else {
    term.out(
      `${term.bold(`Plan for ${file}`)}: ${records} records, ${plan.valid} valid, ${errors.length} with errors\n`,
    );
    for (const error of errors)
      term.out(`  ${term.red(`line ${error.line}`)} ${error.code}: ${error.message}\n`);
    for (const [modelId, count] of Object.entries(models)) term.out(`  ${count} records to ${modelId}\n`);
    term.out(
      `  input tokens ${inputLow.toLocaleString('en-US')} to ${inputHigh.toLocaleString('en-US')}, output at most ${maxOutput.toLocaleString('en-US')}\n`,
    );
    if (longContextLines.length > 0) term.out(`  1M context for lines ${longContextLines.join(', ')}\n`);
    term.out(
      `  estimated cost: global $${plan.estimatedCostUsd.global.low} to $${plan.estimatedCostUsd.global.high}, ` +
        `regional $${plan.estimatedCostUsd.regional.low} to $${plan.estimatedCostUsd.regional.high} (prices of ${defaultCatalog.pricesCheckedOn})\n`,
    );
  }
  return 0;
}
