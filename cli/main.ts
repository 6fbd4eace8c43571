import { PipelineError } from '../shared/errors.ts';
import { LOCAL_UP_USAGE, localUpCommand } from './commands/local-up.ts';
import { PLAN_USAGE, planCommand } from './commands/plan.ts';
import { QUOTAS_USAGE, quotasCommand } from './commands/quotas.ts';
import {
  cancelCommand,
  REMOTE_USAGE,
  redriveCommand,
  resultsCommand,
  statusCommand,
  submitCommand,
} from './commands/remote.ts';
import { REPORT_USAGE, reportCommand } from './commands/report.ts';
import { RUN_USAGE, runCommand } from './commands/run.ts';
import { UsageError } from './errors.ts';
import { stopWithNodeParent } from './parent-watch.ts';
import { type Terminal, terminal } from './terminal.ts';
import { packageVersion } from './version.ts';

const USAGE = `bedrock-batch: run batches of Claude prompts on Amazon Bedrock.

  ${RUN_USAGE}
  ${PLAN_USAGE}
  ${LOCAL_UP_USAGE}
  ${REMOTE_USAGE.split('\n').join('\n  ')}
  ${REPORT_USAGE}
  ${QUOTAS_USAGE}
  bedrock-batch --version
`;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Resolves on Ctrl-C (or SIGTERM), for commands that run until stopped. */
function stopRequested(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

async function main(argv: string[], term: Terminal): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      stopWithNodeParent();
      return runCommand(rest, term);
    case 'plan':
      return planCommand(rest, term);
    case 'local':
      if (rest[0] !== 'up')
        throw new UsageError(`Unknown local command "${rest[0] ?? ''}".`, `Use: ${LOCAL_UP_USAGE}`);
      stopWithNodeParent();
      return localUpCommand(rest.slice(1), term, stopRequested());
    case 'submit':
      return submitCommand(rest, term);
    case 'status':
      return statusCommand(rest, term);
    case 'results':
      return resultsCommand(rest, term);
    case 'cancel':
      return cancelCommand(rest, term);
    case 'redrive':
      return redriveCommand(rest, term);
    case 'report':
      return reportCommand(rest, term);
    case 'quotas':
      return quotasCommand(rest, term);
    case 'version':
    case '--version':
    case '-v':
      term.out(`${packageVersion()}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      term.out(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`Unknown command "${command}".`, 'Run "bedrock-batch help" for the commands.');
  }
}

const term = terminal();
try {
  process.exitCode = await main(process.argv.slice(2), term);
} catch (error) {
  term.endStatus();
  if (error instanceof PipelineError && error.code === 'JOB_FAILED') {
    term.err(`${term.red('Job failed:')} ${error.message}\n`);
    process.exitCode = 1;
  } else if (
    error instanceof PipelineError ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
  ) {
    // Mistakes in what the command was given: the message says what to do; a stack trace would not help.
    term.err(`${term.red('Error:')} ${(error as Error).message}\n`);
    process.exitCode = 2;
  } else {
    term.err(`${term.red('Unexpected error:')} ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  }
}
// The AWS SDK keeps sockets alive; the command is done.
process.exit(process.exitCode ?? 0);
