import type { Catalog } from '../../shared/catalog/catalog.ts';
import type { MessagesBody } from '../../shared/input/records.ts';
import type { BatchStorage } from './batch-jobs.ts';
import { deterministicCompletion } from './completion.ts';
import { messageResponse } from './runtime.ts';
import { countInputTokens } from './tokens.ts';
import { validateInvocation } from './validation.ts';
import { WireError } from './wire-errors.ts';

/** A line of a batch job's input. */
export interface InputRecord {
  /** The input file's URI: each gets its own `.out` file. */
  readonly file: string;
  readonly recordId: string;
  readonly modelInput: unknown;
  /** The modelInput as JSON, as InvokeModel would receive it. */
  readonly text: string;
}

/** Record faults at these rates, besides the `[[batch:error]]` and `[[batch:missing]]` markers. */
export interface BatchRecordFaults {
  /** The share of records answered with an error line. */
  readonly recordErrorRate?: number;
  /** The share of records left out of the output altogether. */
  readonly missingRecordRate?: number;
}

const ERROR_MARKER = '[[batch:error]]';
const MISSING_MARKER = '[[batch:missing]]';

/**
 * Reads every JSONL file a job's input URI names and checks it as Bedrock's validation does: each line a JSON
 * object with a recordId and a modelInput object, within the catalog's record and byte limits. One bad line
 * fails the whole job.
 */
export async function readBatchInput(
  storage: BatchStorage,
  inputUri: string,
  catalog: Catalog,
): Promise<{ records: InputRecord[] } | { problem: string }> {
  const files = (await storage.list(inputUri)).filter((uri) => uri.endsWith('.jsonl'));
  if (files.length === 0) return { problem: `No .jsonl input was found at ${inputUri}.` };
  const limits = catalog.batch;
  const records: InputRecord[] = [];
  let jobBytes = 0;
  for (const file of files) {
    const body = (await storage.read(file)) ?? '';
    const bytes = Buffer.byteLength(body);
    jobBytes += bytes;
    if (bytes > limits.maximumFileBytes)
      return { problem: `The input file ${file} is larger than ${limits.maximumFileBytes} bytes.` };
    for (const [index, line] of body.split('\n').entries()) {
      if (line.trim() === '') continue;
      const record = inputRecord(file, line);
      if (record === undefined)
        return {
          problem: `Line ${index + 1} of ${file} is not a JSON object with a recordId and a modelInput.`,
        };
      records.push(record);
    }
  }
  if (jobBytes > limits.maximumJobBytes)
    return { problem: `The job's input is larger than ${limits.maximumJobBytes} bytes.` };
  if (records.length > limits.maximumRecordsPerJob)
    return { problem: `The input has more than ${limits.maximumRecordsPerJob} records.` };
  return { records };
}

function inputRecord(file: string, line: string): InputRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const { recordId, modelInput } = (value ?? {}) as { recordId?: unknown; modelInput?: unknown };
  if (typeof recordId !== 'string' || typeof modelInput !== 'object' || modelInput === null) return undefined;
  return { file, recordId, modelInput, text: JSON.stringify(modelInput) };
}

type Usage = { input_tokens: number; output_tokens: number };

/**
 * Answers a job's records as InvokeModel would (same validation, same deterministic completion for the same
 * model id and body), keeps the lines per input file, and writes them shuffled, with the job's manifest.
 */
export class BatchRecordWriter {
  missing = 0;
  private readonly lines = new Map<string, string[]>();
  private readonly tokens = { input: 0, output: 0 };

  constructor(
    private readonly settings: {
      readonly region: string;
      readonly catalog: Catalog;
      readonly seed: number;
      readonly modelId: string;
      readonly faults: BatchRecordFaults;
      readonly random: () => number;
    },
  ) {}

  answer(record: InputRecord): 'success' | 'error' | 'missing' {
    const { faults, random } = this.settings;
    if (!this.lines.has(record.file)) this.lines.set(record.file, []);
    if (record.text.includes(MISSING_MARKER) || random() < (faults.missingRecordRate ?? 0)) {
      this.missing += 1;
      return 'missing';
    }
    if (record.text.includes(ERROR_MARKER) || random() < (faults.recordErrorRate ?? 0)) {
      this.keep(record, { error: { errorCode: 500, errorMessage: 'Internal server error.' } });
      return 'error';
    }
    const answered = this.modelOutput(record);
    if ('error' in answered) {
      this.keep(record, answered);
      return 'error';
    }
    this.tokens.input += answered.usage.input_tokens;
    this.tokens.output += answered.usage.output_tokens;
    this.keep(record, { modelOutput: answered.modelOutput });
    return 'success';
  }

  /** Writes each input file's `.out` (lines in no particular order) and `manifest.json.out`. */
  async flush(
    storage: BatchStorage | undefined,
    outputUri: string,
    jobId: string,
    counts: { total: number; processed: number; success: number; error: number },
  ): Promise<void> {
    if (storage === undefined) return;
    const folder = `${outputUri.replace(/\/+$/, '')}/${jobId}`;
    for (const [file, lines] of this.lines) {
      const name = file.slice(file.lastIndexOf('/') + 1);
      await storage.write(
        `${folder}/${name}.out`,
        lines.length === 0 ? '' : `${this.shuffled(lines).join('\n')}\n`,
      );
    }
    const manifest = {
      totalRecordCount: counts.total,
      processedRecordCount: counts.processed,
      successRecordCount: counts.success,
      errorRecordCount: counts.error,
      inputTokenCount: this.tokens.input,
      outputTokenCount: this.tokens.output,
    };
    await storage.write(`${folder}/manifest.json.out`, JSON.stringify(manifest));
  }

  private modelOutput(
    record: InputRecord,
  ): { modelOutput: unknown; usage: Usage } | { error: { errorCode: number; errorMessage: string } } {
    const { region, catalog, seed, modelId } = this.settings;
    try {
      const request = validateInvocation(modelId, Buffer.from(record.text), region, catalog);
      const completion = deterministicCompletion(
        `${request.model.bedrockId}\n${record.text}`,
        seed,
        request.maxTokens,
      );
      const usage = {
        input_tokens: countInputTokens(request.body as unknown as MessagesBody).total,
        output_tokens: completion.outputTokens,
      };
      return { modelOutput: messageResponse(request.model, completion, usage), usage };
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      return { error: { errorCode: error.status, errorMessage: error.message } };
    }
  }

  private keep(record: InputRecord, answer: Record<string, unknown>): void {
    const lines = this.lines.get(record.file) ?? [];
    lines.push(JSON.stringify({ recordId: record.recordId, modelInput: record.modelInput, ...answer }));
    this.lines.set(record.file, lines);
  }

  /** Bedrock does not keep input order: neither does the stand-in. */
  private shuffled(lines: readonly string[]): string[] {
    const copy = [...lines];
    for (let index = copy.length - 1; index > 0; index -= 1) {
      const other = Math.floor(this.settings.random() * (index + 1));
      [copy[index], copy[other]] = [copy[other] as string, copy[index] as string];
    }
    return copy;
  }
}
