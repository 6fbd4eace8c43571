import { PipelineError } from '../shared/errors.ts';
import { CATALOG_HELP, withCatalogOption } from './catalog-option.ts';
import { asksForHelp, type CommandSpec, closest, helpText } from './command-line.ts';
import { COMPLETION_COMMAND, completionCommand } from './commands/completion.ts';
import { LOCAL_UP_COMMAND, localUpCommand } from './commands/local-up.ts';
import { MODELS_COMMAND, modelsCommand } from './commands/models.ts';
import { PLAN_COMMAND, planCommand } from './commands/plan.ts';
import { QUOTAS_COMMAND, quotasCommand } from './commands/quotas.ts';
import {
  CANCEL_COMMAND,
  cancelCommand,
  JOBS_COMMAND,
  jobsCommand,
  REDRIVE_COMMAND,
  RESULTS_COMMAND,
  redriveCommand,
  resultsCommand,
  STATUS_COMMAND,
  SUBMIT_COMMAND,
  statusCommand,
  submitCommand,
} from './commands/remote.ts';
import { REPORT_COMMAND, reportCommand } from './commands/report.ts';
import { RUN_COMMAND, runCommand } from './commands/run.ts';
import { UsageError } from './errors.ts';
import { stopWithNodeParent } from './parent-watch.ts';
import type { Terminal } from './terminal.ts';
import { packageVersion } from './version.ts';

/** Resolves on Ctrl-C (or SIGTERM), for commands that run until stopped. */
function stopRequested(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

export interface Command {
  readonly spec: CommandSpec;
  run(args: string[], term: Terminal): Promise<number> | number;
}

/** The commands, in the order help lists them. */
export const COMMANDS: readonly Command[] = [
  {
    spec: RUN_COMMAND,
    run: (args, term) => {
      stopWithNodeParent();
      return runCommand(args, term);
    },
  },
  { spec: PLAN_COMMAND, run: planCommand },
  {
    spec: LOCAL_UP_COMMAND,
    run: (args, term) => {
      stopWithNodeParent();
      return localUpCommand(args, term, stopRequested());
    },
  },
  { spec: SUBMIT_COMMAND, run: submitCommand },
  { spec: JOBS_COMMAND, run: jobsCommand },
  { spec: STATUS_COMMAND, run: statusCommand },
  { spec: RESULTS_COMMAND, run: resultsCommand },
  { spec: CANCEL_COMMAND, run: cancelCommand },
  { spec: REDRIVE_COMMAND, run: redriveCommand },
  { spec: REPORT_COMMAND, run: reportCommand },
  { spec: QUOTAS_COMMAND, run: quotasCommand },
  { spec: MODELS_COMMAND, run: modelsCommand },
  {
    spec: COMPLETION_COMMAND,
    run: (args, term) =>
      completionCommand(
        args,
        term,
        COMMANDS.map((command) => command.spec),
      ),
  },
];

function overview(): string {
  const width = Math.max(...COMMANDS.map(({ spec }) => spec.name.length)) + 2;
  return `bedrock-batch: run batches of Claude prompts on Amazon Bedrock.

Usage: bedrock-batch <command> [options]

Commands:
${COMMANDS.map(({ spec }) => `  ${spec.name.padEnd(width)}${spec.summary}`).join('\n')}

Run "bedrock-batch <command> --help" for a command's arguments and options, "bedrock-batch --version" for
the version.

${CATALOG_HELP}
`;
}

/** The command the arguments name, and the arguments after its name. */
function commandOf(argv: readonly string[]): { command: Command; args: string[] } {
  const [first = '', second = ''] = argv;
  const groups = new Set(COMMANDS.map(({ spec }) => spec.name.split(' ')[0]));
  const name =
    groups.has(first) && COMMANDS.every(({ spec }) => spec.name !== first) ? `${first} ${second}` : first;
  const command = COMMANDS.find(({ spec }) => spec.name === name);
  if (command !== undefined) return { command, args: argv.slice(name.split(' ').length) };
  const meant = closest(
    name,
    COMMANDS.map(({ spec }) => spec.name),
  );
  throw new UsageError(
    `Unknown command "${name.trim()}".${meant === undefined ? '' : ` Did you mean "${meant}"?`}`,
    'Run "bedrock-batch help" for the commands.',
  );
}

async function dispatch(argv: string[], term: Terminal): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const [, topic] = argv;
    if (topic !== undefined && first === 'help') {
      term.out(helpText(commandOf(argv.slice(1)).command.spec));
      return 0;
    }
    term.out(overview());
    return first === undefined ? 2 : 0;
  }
  if (first === 'version' || first === '--version' || first === '-v') {
    term.out(`${packageVersion()}\n`);
    return 0;
  }
  return withCatalogOption(argv, async (rest) => {
    const { command, args } = commandOf(rest);
    if (asksForHelp(args)) {
      term.out(helpText(command.spec));
      return 0;
    }
    return command.run(args, term);
  });
}

/**
 * The command line as a whole: the command's exit code, with mistakes said in one line (exit code 2) and
 * only what nobody foresaw with its stack trace.
 */
export async function runCommandLine(argv: string[], term: Terminal): Promise<number> {
  try {
    return await dispatch(argv, term);
  } catch (error) {
    term.endStatus();
    if (error instanceof PipelineError && error.code === 'JOB_FAILED') {
      term.err(`${term.red('Job failed:')} ${error.message}\n`);
      return 1;
    }
    if (error instanceof PipelineError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      // Mistakes in what the command was given: the message says what to do; a stack trace would not help.
      term.err(`${term.red('Error:')} ${(error as Error).message}\n`);
      return 2;
    }
    term.err(`${term.red('Unexpected error:')} ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
