import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

/** One option of a command: how node:util parseArgs reads it, and what its help and completion say. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  /** What the value looks like, as help shows it: `--out <dir>`. */
  readonly value?: string;
  readonly help: string;
  /** The values it takes, offered by shell completion; a function when they come from data. */
  readonly choices?: () => readonly string[];
  /** Its value is a file or a folder: shell completion offers paths. */
  readonly path?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** A command's arguments that are not options: a file, a job. */
export interface PositionalSpec {
  readonly name: string;
  readonly help: string;
  readonly path?: boolean;
  readonly optional?: boolean;
}

/** A command as help, suggestions and shell completion know it. */
export interface CommandSpec<Options extends OptionSpecs = OptionSpecs> {
  /** As typed: `run`, `local up`. */
  readonly name: string;
  /** One line for the list of commands. */
  readonly summary: string;
  /** What it does, for its own help. */
  readonly description: string;
  readonly positionals: readonly PositionalSpec[];
  readonly options: Options;
  readonly examples?: readonly string[];
}

type ParsedCommandLine<Options extends OptionSpecs> = ReturnType<
  typeof parseArgs<{ args: string[]; options: Options; allowPositionals: boolean; strict: true }>
>;

export const HELP_FLAGS: readonly string[] = ['--help', '-h'];

/** Whether the arguments ask for help (before a `--` that ends the options). */
export function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => HELP_FLAGS.includes(arg));
}

/**
 * node:util parseArgs, with what a person expects of a command line: a negative number after an option is
 * that option's value (its check then says what is wrong with it, instead of "argument is ambiguous"), more
 * arguments than the command takes are an error, not silently ignored, and a mistyped option gets the one
 * it was probably meant to be.
 */
export function parseCommandLine<Options extends OptionSpecs>(
  args: readonly string[],
  spec: CommandSpec<Options>,
): ParsedCommandLine<Options> {
  const { options } = spec;
  const joined: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? '';
    const next = args[index + 1];
    const option = arg.startsWith('--') ? options[arg.slice(2)] : undefined;
    if (option?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      joined.push(`${arg}=${next}`);
      index += 1;
    } else {
      joined.push(arg);
    }
  }
  const parsed = parseOrExplain(joined, spec);
  const extra = parsed.positionals.slice(spec.positionals.length);
  if (extra.length > 0) {
    throw new UsageError(
      `Unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((arg) => `"${arg}"`).join(' ')}.`,
      spec.positionals.length === 0
        ? `"${spec.name}" takes options only.`
        : `"${spec.name}" takes ${spec.positionals.map((positional) => positional.name).join(', ')} and options; run one file at a time.`,
    );
  }
  return parsed;
}

function parseOrExplain<Options extends OptionSpecs>(
  args: string[],
  spec: CommandSpec<Options>,
): ParsedCommandLine<Options> {
  // parseArgs is given only what it reads; help texts and choices stay here.
  const config = Object.fromEntries(
    Object.entries(spec.options).map(([name, option]) => [
      name,
      { type: option.type, ...(option.default === undefined ? {} : { default: option.default }) },
    ]),
  ) as ParseArgsConfig['options'] as Options;
  try {
    return parseArgs({ args, options: config, allowPositionals: spec.positionals.length > 0, strict: true });
  } catch (error) {
    throw explained(error, spec);
  }
}

/** parseArgs's own messages name its internals ("To specify a positional argument starting with a '-'..."). */
function explained(error: unknown, spec: CommandSpec): unknown {
  const code = (error as { code?: string }).code;
  const message = (error as Error).message ?? '';
  const named = /'(-[^' ]+)/.exec(message)?.[1];
  const helpLine = `Run "bedrock-batch ${spec.name} --help" for its options.`;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && named !== undefined) {
    const known = Object.keys(spec.options).map((name) => `--${name}`);
    const meant = closest(named.split('=')[0] ?? named, known);
    return new UsageError(
      `Unknown option ${named} for "${spec.name}".${meant === undefined ? '' : ` Did you mean ${meant}?`}`,
      helpLine,
    );
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && named !== undefined) {
    const option = spec.options[named.replace(/^--/, '')];
    return new UsageError(
      option?.type === 'boolean'
        ? `${named} takes no value.`
        : `${named} needs a value${option?.value === undefined ? '' : ` (${option.value})`}.`,
      helpLine,
    );
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    return new UsageError(
      `"${spec.name}" takes options only, not ${message.split(' ').at(-1) ?? ''}`,
      helpLine,
    );
  }
  return error;
}

/**
 * The candidate a mistyped word was most likely meant to be: the nearest by edit distance, within a third of
 * its length (at least 2), or the only one it begins. Undefined when none is near enough to guess.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const ranked = candidates
    .map((candidate) => ({ candidate, distance: editDistance(word, candidate) }))
    .sort((a, b) => a.distance - b.distance);
  const [best] = ranked;
  if (best !== undefined && best.distance <= Math.max(2, Math.floor(word.length / 3))) return best.candidate;
  const starting = candidates.filter((candidate) => candidate.startsWith(word) && word.length >= 2);
  return starting.length === 1 ? starting[0] : undefined;
}

/** Levenshtein distance, with a swap of two neighbouring letters counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      const row = rows[i];
      if (row !== undefined) row[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** `bedrock-batch run <file.jsonl> [options]` */
export function synopsis(spec: CommandSpec): string {
  const positionals = spec.positionals.map((positional) =>
    positional.optional === true ? `[${positional.name}]` : positional.name,
  );
  const options = Object.keys(spec.options).length > 0 ? ['[options]'] : [];
  return ['bedrock-batch', spec.name, ...positionals, ...options].join(' ');
}

/** Labels (`--out <dir>`) longer than this put their text on a line of its own. */
const LABEL_COLUMNS = 26;

/** A command's help: what it does, its arguments, each option with its value, default and meaning. */
export function helpText(spec: CommandSpec): string {
  const optionRows = Object.entries(spec.options).map(([name, option]): [string, string] => [
    `--${name}${option.type === 'string' ? ` <${option.value ?? 'value'}>` : ''}`,
    option.help +
      (option.default === undefined || option.default === false ? '' : ` (default: ${option.default})`),
  ]);
  optionRows.push(['-h, --help', 'show this help']);
  const positionalRows = spec.positionals.map((positional): [string, string] => [
    positional.name,
    positional.help,
  ]);
  const labels = [...optionRows, ...positionalRows].map(([left]) => left.length);
  const width = Math.min(LABEL_COLUMNS, Math.max(...labels)) + 2;
  // A label wider than the column has its text on the next line, under the others' texts.
  const row = ([left, right]: [string, string]) =>
    left.length + 2 > width
      ? `  ${left}\n${' '.repeat(width + 2)}${wrap(right, width + 2)}`
      : `  ${left.padEnd(width)}${wrap(right, width + 2)}`;
  const table = (rows: ReadonlyArray<[string, string]>) => rows.map(row).join('\n');
  return [
    `Usage: ${synopsis(spec)}`,
    '',
    wrap(spec.description, 0),
    ...(positionalRows.length === 0 ? [] : ['', 'Arguments:', table(positionalRows)]),
    '',
    'Options:',
    table(optionRows),
    ...(spec.examples === undefined || spec.examples.length === 0
      ? []
      : ['', 'Examples:', ...spec.examples.map((example) => `  ${example}`)]),
    '',
  ].join('\n');
}

/** Text broken at spaces to fit 100 columns, continued under its first line. */
function wrap(text: string, indent: number): string {
  const room = Math.max(40, 100 - indent);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}
