import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/app.ts';
import { closest, parseCommandLine } from '../../cli/command-line.ts';
import { completionScript } from '../../cli/commands/completion.ts';
import { RUN_COMMAND } from '../../cli/commands/run.ts';
import { UsageError } from '../../cli/errors.ts';
import { runInProcess } from '../support/cli.ts';
import { thrown } from '../support/thrown.ts';

const execFileAsync = promisify(execFile);

const commandLine = (...argv: string[]) => runInProcess(argv);

describe('a mistyped word', () => {
  it.each([
    ['stauts', ['run', 'status', 'submit'], 'status'],
    ['--modle', ['--model', '--max-tokens', '--out'], '--model'],
    ['--max-token', ['--model', '--max-tokens'], '--max-tokens'],
    ['--endpont', ['--endpoint', '--endpoints'], '--endpoint'],
    ['quota', ['quotas', 'run'], 'quotas'],
    ['--fast', ['--out', '--model', '--speed'], undefined],
    ['re', ['results', 'redrive', 'report'], undefined],
  ])('"%s" among %j is taken for %s', (word, candidates, meant) => {
    // Act
    const guess = closest(word, candidates);

    // Assess
    expect(guess).toBe(meant);
  });
});

describe('a command line the command cannot read', () => {
  it.each([
    [['file.jsonl', '--modle', 'haiku-4.5'], /^Unknown option --modle for "run"\. Did you mean --model\?$/],
    [['file.jsonl', '--fast'], /^Unknown option --fast for "run"\.$/],
    [['file.jsonl', '--model'], /^--model needs a value \(alias\|id\)\.$/],
    [['file.jsonl', '--json=yes'], /^--json takes no value\.$/],
    [['a.jsonl', 'b.jsonl'], /^Unexpected argument "b\.jsonl"\.$/],
  ])('%j is refused with %s and a pointer to the help', (args, message) => {
    // Act
    const error = thrown(UsageError, () => parseCommandLine(args, RUN_COMMAND));

    // Assess
    expect(error.message.split(/ (Run "|"run" takes)/)[0]).toMatch(message);
    expect(error.message).toMatch(/(bedrock-batch run --help|run one file at a time)/);
  });
});

describe('help', () => {
  it.each(COMMANDS.map(({ spec }) => [spec.name, spec] as const))(
    'for "%s" names what it takes and describes each option, with its default',
    async (name, spec) => {
      // Act
      const { code, stdout } = await commandLine(...name.split(' '), '--help');

      // Assess
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: bedrock-batch ${name}`));
      for (const positional of spec.positionals) expect(stdout).toContain(positional.name);
      for (const [option, { help, type, default: fallback }] of Object.entries(spec.options)) {
        const line = stdout
          .split('\n')
          .findIndex((text) => text.trimStart().startsWith(`--${option} `) || text.trim() === `--${option}`);
        expect(line, `--${option}`).toBeGreaterThanOrEqual(0);
        expect(stdout.replaceAll(/\s+/g, ' ')).toContain(help.split(' ').slice(0, 4).join(' '));
        if (type === 'string' && typeof fallback === 'string')
          expect(stdout).toMatch(new RegExp(`default:\\s+${fallback.replaceAll('.', '\\.')}`));
      }
      expect(stdout).toContain('-h, --help');
    },
  );

  it('lists every command with its summary, and "help <command>" is the command\'s own help', async () => {
    // Act
    const overview = await commandLine('help');
    const ofStatus = await commandLine('help', 'status');

    // Assess
    expect(overview.code).toBe(0);
    for (const { spec } of COMMANDS)
      expect(overview.stdout).toMatch(new RegExp(`^  ${spec.name} +${spec.summary.slice(0, 20)}`, 'm'));
    expect(ofStatus.stdout).toMatch(/^Usage: bedrock-batch status <job> \[options\]/);
  });

  it('is what a mistyped command gets pointed to, with the command it was probably meant to be', async () => {
    // Act
    const { code, stderr } = await commandLine('stauts', 'job-1');

    // Assess
    expect(code).toBe(2);
    expect(stderr).toBe(
      'Error: Unknown command "stauts". Did you mean "status"? Run "bedrock-batch help" for the commands.\n',
    );
  });
});

describe('shell completion', () => {
  const script = completionScript(
    COMMANDS.map(({ spec }) => spec),
    false,
  );

  /** What bash offers for the words typed so far (the last one being completed), with the script loaded. */
  async function offered(...typed: string[]): Promise<string[]> {
    const words = ['bedrock-batch', ...typed].map((word) => `'${word}'`).join(' ');
    const { stdout } = await execFileAsync('bash', [
      '-c',
      `${script}\nCOMP_WORDS=(${words}); COMP_CWORD=${typed.length}; _bedrock_batch; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]);
    return stdout.split('\n').filter((line) => line !== '');
  }

  it.each([
    [['st'], ['status']],
    [['local', ''], ['up']],
    [['run', '--mo'], ['--model']],
    [
      ['run', '--model', ''],
      ['opus-4.6', 'sonnet-4.5', 'sonnet-4', 'haiku-4.5', 'opus-4.7', 'sonnet-4.6'],
    ],
    [['submit', '--lane', 'a'], ['auto']],
    [['local', 'up', '--sp'], ['--speed']],
    [
      ['cancel', '--'],
      ['--stack', '--resources', '--region', '--help'],
    ],
    [['completion', ''], []],
  ])('of %j offers %j', async (typed, expected) => {
    // Act
    const words = await offered(...typed);

    // Assess
    expect(words).toEqual(expected);
  });

  it('is printed for bash and zsh, and refuses a shell it does not have', async () => {
    // Act
    const bash = await commandLine('completion');
    const zsh = await commandLine('completion', 'zsh');
    const fish = await commandLine('completion', 'fish');

    // Assess
    expect(bash.stdout).toBe(script);
    expect(zsh.stdout).toMatch(/bashcompinit/);
    expect(fish).toMatchObject({
      code: 2,
      stderr: 'Error: No completion for the shell "fish". Use one of bash, zsh.\n',
    });
  });
});
