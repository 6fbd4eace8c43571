import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultCatalog } from '../shared/catalog/catalog.ts';
import { UsageError } from './errors.ts';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
type ParsedCommandLine<Options extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: Options; allowPositionals: boolean; strict: true }>
>;

/**
 * node:util parseArgs, with what a person expects of a command line: a negative number after an option is
 * that option's value (its check then says what is wrong with it, instead of "argument is ambiguous"), and
 * more arguments than the command takes are an error, not silently ignored.
 */
export function parseCommandLine<Options extends OptionsConfig>(
  args: readonly string[],
  options: Options,
  positionalNames: readonly string[] = [],
): ParsedCommandLine<Options> {
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
  const parsed = parseArgs({
    args: joined,
    options,
    allowPositionals: positionalNames.length > 0,
    strict: true,
  });
  const extra = parsed.positionals.slice(positionalNames.length);
  if (extra.length > 0) {
    throw new UsageError(
      `Unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((arg) => `"${arg}"`).join(' ')}.`,
      positionalNames.length === 0
        ? 'This command takes options only.'
        : `This command takes ${positionalNames.join(', ')} and options; run one file at a time.`,
    );
  }
  return parsed;
}

/** A whole number of at least 1, written in decimal digits (not 0x10, 1e3 or 2.5). */
export function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1)
    throw new UsageError(`--${name} must be a whole number of at least 1, not "${text}".`);
  return Number(text);
}

/** A number of 0 or more, written as one (not empty, not "abc"). */
export function nonNegativeNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0)
    throw new UsageError(`--${name} must be a number of 0 or more, not "${text}".`);
  return value;
}

/** A region that serves Claude on Bedrock, by the catalog. */
export function knownRegion(text: string): string {
  const region = text.trim();
  if (defaultCatalog.geographyOfRegion(region) === undefined) {
    throw new UsageError(
      `--region ${text === '' ? '""' : text} does not serve Claude on Bedrock.`,
      `Use one of ${defaultCatalog.knownRegions.join(', ')}.`,
    );
  }
  return region;
}
