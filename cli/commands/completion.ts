import { type CommandSpec, parseCommandLine } from '../command-line.ts';
import { UsageError } from '../errors.ts';
import type { Terminal } from '../terminal.ts';

const shells = ['bash', 'zsh'] as const;

export const COMPLETION_COMMAND = {
  name: 'completion',
  summary: 'print a shell completion script for bash or zsh',
  description:
    'Prints a script that completes commands, options and their values (models, regions, lanes, files) as ' +
    'you type. Load it in the shell: source <(bedrock-batch completion) in bash, or add that line to ' +
    '~/.bashrc; in zsh, source <(bedrock-batch completion zsh) in ~/.zshrc.',
  positionals: [{ name: 'shell', help: `${shells.join(' or ')} (default: bash)`, optional: true }],
  options: {},
} as const satisfies CommandSpec;

export function completionCommand(args: string[], term: Terminal, commands: readonly CommandSpec[]): number {
  const { positionals } = parseCommandLine(args, COMPLETION_COMMAND);
  const [shell = 'bash'] = positionals;
  if (!(shells as readonly string[]).includes(shell))
    throw new UsageError(`No completion for the shell "${shell}".`, `Use one of ${shells.join(', ')}.`);
  term.out(completionScript(commands, shell === 'zsh'));
  return 0;
}

/** Words as one bash word list, each quoted for the shell. */
function words(list: readonly string[]): string {
  return `'${list.join(' ').replaceAll("'", "'\\''")}'`;
}

/** What follows an option in one command: its choices, a path, or nothing to offer. */
function valueCases(spec: CommandSpec): string {
  return Object.entries(spec.options)
    .filter(([, option]) => option.type === 'string')
    .map(([name, option]) => {
      const reply =
        option.choices !== undefined
          ? `COMPREPLY=($(compgen -W ${words(option.choices())} -- "$cur"))`
          : option.path === true
            ? 'COMPREPLY=($(compgen -f -- "$cur"))'
            : 'COMPREPLY=()';
      return `        --${name}) ${reply}; return ;;`;
    })
    .join('\n');
}

function commandCase(spec: CommandSpec): string {
  const options = [...Object.keys(spec.options).map((name) => `--${name}`), '--help'];
  const takesPath = spec.positionals.some((positional) => positional.path === true);
  return [
    `    ${JSON.stringify(spec.name)})`,
    '      case "$prev" in',
    valueCases(spec),
    '      esac',
    `      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W ${words(options)} -- "$cur"));`,
    `      else ${takesPath ? 'COMPREPLY=($(compgen -f -- "$cur"))' : 'COMPREPLY=()'}; fi ;;`,
  ]
    .filter((line) => line !== '')
    .join('\n');
}

/**
 * A bash completion function built from the commands' own specs, so it offers exactly the options help
 * lists; zsh runs it through bashcompinit.
 */
export function completionScript(commands: readonly CommandSpec[], zsh: boolean): string {
  const firstWords = [...new Set(commands.map((spec) => spec.name.split(' ')[0] ?? spec.name))];
  const subcommands = commands.filter((spec) => spec.name.includes(' '));
  const groups = [...new Set(subcommands.map((spec) => spec.name.split(' ')[0] ?? ''))];
  return `# bedrock-batch ${zsh ? 'zsh' : 'bash'} completion: source <(bedrock-batch completion${zsh ? ' zsh' : ''})
${zsh ? 'autoload -U +X bashcompinit && bashcompinit\n' : ''}_bedrock_batch() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local command="\${COMP_WORDS[1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W ${words([...firstWords, '--help', '--version'])} -- "$cur")); return
  fi
  case "$command" in
${groups
  .map((group) => {
    const under = subcommands
      .filter((spec) => spec.name.startsWith(`${group} `))
      .map((spec) => spec.name.slice(group.length + 1));
    return `    ${group}) if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=($(compgen -W ${words(under)} -- "$cur")); return; fi
      command="$command \${COMP_WORDS[2]}" ;;`;
  })
  .join('\n')}
  esac
  case "$command" in
${commands.map(commandCase).join('\n')}
  esac
}
complete -o default -F _bedrock_batch bedrock-batch
`;
}
