/**
 * `npm start`: the main job on the embedded default. Runs events/prompts/sample.jsonl through the whole
 * pipeline on the local cloud, with the Bedrock stand-in at a realistic speed, and writes the results to out/.
 */
import { fileURLToPath } from 'node:url';
import { runLocalJob } from './run-job.ts';

const sample = fileURLToPath(new URL('../events/prompts/sample.jsonl', import.meta.url));

const result = await runLocalJob({ file: sample, outDir: 'out', speed: 1 });
const {
  totalRecordCount,
  successRecordCount,
  errorRecordCount,
  inputTokenCount,
  outputTokenCount,
  estimatedCostUsd,
} = result.manifest;
process.stdout.write(
  `\nDone: ${totalRecordCount} records, ${successRecordCount} succeeded, ${errorRecordCount} failed; ` +
    `${inputTokenCount} input and ${outputTokenCount} output tokens; estimated cost $${estimatedCostUsd} ` +
    `(stand-in answers, real Bedrock prices).\n`,
);
