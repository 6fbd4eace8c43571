import { PipelineError } from '../../shared/errors.ts';

/** An EventBridge event pattern, as written in a rule (and in the CDK stack). */
export type EventPattern = { readonly [field: string]: unknown };

/**
 * EventBridge's pattern matching: every field of the pattern must match; a leaf is a list of matchers, any
 * of which may match; an event array matches if any element does. Matchers: literals, prefix, suffix,
 * equals-ignore-case, wildcard, anything-but, numeric, exists, and $or. Anything else is an invalid pattern.
 */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  return matchObject(pattern, event);
}

function matchObject(pattern: EventPattern, value: unknown): boolean {
  if (!isRecord(value)) return false;
  return Object.entries(pattern).every(([field, expected]) => {
    if (field === '$or') {
      if (!Array.isArray(expected)) throw invalid('$or takes a list of patterns');
      return expected.some((alternative) => matchObject(alternative as EventPattern, value));
    }
    const present = Object.hasOwn(value, field);
    if (Array.isArray(expected)) return expected.some((matcher) => matchLeaf(matcher, present, value[field]));
    if (isRecord(expected)) return present && matchObject(expected, value[field]);
    throw invalid(`the value of "${field}" must be a list of matchers or a nested pattern`);
  });
}

function matchLeaf(matcher: unknown, present: boolean, value: unknown): boolean {
  if (isRecord(matcher) && 'exists' in matcher) return matcher.exists === present;
  if (!present) return false;
  const values = Array.isArray(value) ? value : [value];
  if (isRecord(matcher) && 'anything-but' in matcher) {
    const excluded = matcher['anything-but'];
    const exclusions = Array.isArray(excluded) ? excluded : [excluded];
    return !values.some((candidate) => exclusions.some((exclusion) => matchScalar(exclusion, candidate)));
  }
  return values.some((candidate) => matchScalar(matcher, candidate));
}

function matchScalar(matcher: unknown, value: unknown): boolean {
  if (!isRecord(matcher)) return matcher === value;
  const [operator, operand, ...rest] = Object.entries(matcher).flat();
  if (rest.length > 0) throw invalid(`a matcher has one operator, not ${JSON.stringify(matcher)}`);
  switch (operator) {
    case 'prefix':
      return stringTest(operand, value, (text, wanted) => text.startsWith(wanted));
    case 'suffix':
      return stringTest(operand, value, (text, wanted) => text.endsWith(wanted));
    case 'equals-ignore-case':
      return (
        typeof value === 'string' &&
        typeof operand === 'string' &&
        value.toLowerCase() === operand.toLowerCase()
      );
    case 'wildcard':
      return (
        typeof value === 'string' && typeof operand === 'string' && wildcardExpression(operand).test(value)
      );
    case 'numeric':
      return typeof value === 'number' && Array.isArray(operand) && numericTest(operand, value);
    default:
      throw invalid(`unsupported matcher ${JSON.stringify(matcher)}`);
  }
}

/** prefix and suffix take a string, or `{"equals-ignore-case": string}`. */
function stringTest(
  operand: unknown,
  value: unknown,
  test: (text: string, wanted: string) => boolean,
): boolean {
  if (typeof value !== 'string') return false;
  if (typeof operand === 'string') return test(value, operand);
  if (isRecord(operand) && typeof operand['equals-ignore-case'] === 'string') {
    return test(value.toLowerCase(), operand['equals-ignore-case'].toLowerCase());
  }
  throw invalid(`bad prefix or suffix operand ${JSON.stringify(operand)}`);
}

function wildcardExpression(wildcard: string): RegExp {
  const parts = wildcard.split(/(\\\*|\*)/).map((part) => {
    if (part === '*') return '.*';
    if (part === '\\*') return '\\*';
    return part.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('')}$`, 's');
}

function numericTest(conditions: readonly unknown[], value: number): boolean {
  for (let index = 0; index < conditions.length; index += 2) {
    const operator = conditions[index];
    const bound = conditions[index + 1];
    if (typeof bound !== 'number')
      throw invalid(`numeric bound must be a number, not ${JSON.stringify(bound)}`);
    const holds =
      operator === '='
        ? value === bound
        : operator === '<'
          ? value < bound
          : operator === '<='
            ? value <= bound
            : operator === '>'
              ? value > bound
              : operator === '>='
                ? value >= bound
                : undefined;
    if (holds === undefined) throw invalid(`unknown numeric operator ${JSON.stringify(operator)}`);
    if (!holds) return false;
  }
  return true;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(detail: string): PipelineError {
  return new PipelineError('INVALID_EVENT_PATTERN', `Invalid event pattern: ${detail}.`);
}
