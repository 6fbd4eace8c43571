import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';
import { runCommandLine } from '../../cli/app.ts';
import { recordingTerminal } from './terminal.ts';

/** The CLI's sources, run as the built bin runs them (the package test runs the built one itself). */
const CLI_MAIN = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The `bedrock-batch` command in a child process, as a user runs it (not on a terminal). */
export function startCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { wrapped?: boolean; cwd?: string } = {},
): { child: ChildProcess; output: () => CliRun; done: Promise<CliRun> } {
  // tsx by its location: from another working folder, a bare `--import tsx` would not be found.
  const command = [process.execPath, '--import', import.meta.resolve('tsx'), CLI_MAIN, ...args];
  // A Node process that starts the CLI as its child, as tsx's own command does, passing no signal on.
  const wrapper = `require('node:child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' })`;
  const argv = options.wrapped === true ? ['-e', wrapper, ...command] : command.slice(1);
  const child = spawn(process.execPath, argv, {
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const output = () => ({ code: child.exitCode, stdout, stderr });
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, output, done };
}

/**
 * The command line in this process, for what it decides before it starts anything (refusals, help): the
 * same exit code and output as the command, without a process's start-up.
 */
export async function runInProcess(argv: readonly string[]): Promise<CliRun> {
  const term = recordingTerminal();
  const code = await runCommandLine([...argv], term);
  return { code, stdout: term.stdout(), stderr: term.stderr() };
}

export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { cwd?: string } = {},
): Promise<CliRun> {
  return startCli(args, env, options).done;
}

/** Waits until the command has printed something matching `pattern`. */
export function waitForOutput(
  output: () => CliRun,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpMatchArray> {
  return vi.waitFor(
    () => {
      const match = pattern.exec(output().stdout);
      if (match === null)
        throw new Error(`no output matching ${pattern} yet:\n${output().stdout}\n${output().stderr}`);
      return match;
    },
    { timeout: timeoutMs, interval: 50 },
  );
}
