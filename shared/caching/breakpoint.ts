import type { MessagesBody } from '../input/records.ts';
import type { CacheTtl } from './cache-ttl.ts';
import {
  cacheBreakpoints,
  leadingPrefixes,
  MAX_CACHE_BREAKPOINTS,
  type SharedPrefix,
} from './shared-prefix.ts';

type Body = Readonly<Record<string, unknown>>;

/** A file's shared prefix as the worker marks it: where it ends and the TTL chosen for it. */
export type MarkedPrefix = Pick<SharedPrefix, 'blocks' | 'fingerprint'> & { readonly ttl?: CacheTtl };

/** Why a request's breakpoints would be refused by Bedrock, with the fix; undefined when they are fine. */
export function cacheBreakpointProblem(
  body: MessagesBody,
  ttls: readonly string[],
): { readonly code: string; readonly message: string; readonly fix: string } | undefined {
  const breakpoints = cacheBreakpoints(body);
  if (breakpoints.length > MAX_CACHE_BREAKPOINTS) {
    return {
      code: 'TOO_MANY_CACHE_BREAKPOINTS',
      message: `The record has ${breakpoints.length} cache_control breakpoints; Bedrock takes at most ${MAX_CACHE_BREAKPOINTS}.`,
      fix: `Keep the ${MAX_CACHE_BREAKPOINTS} that end the longest prefixes the records share.`,
    };
  }
  const unsupported = breakpoints.find((breakpoint) => !ttls.includes(breakpoint.ttl));
  if (unsupported !== undefined) {
    return {
      code: 'UNSUPPORTED_CACHE_TTL',
      message: `cache_control ttl "${unsupported.ttl}" is not one the model takes.`,
      fix: `Use ${ttls.join(' or ')}.`,
    };
  }
  const short = breakpoints.findIndex((breakpoint) => breakpoint.ttl !== '1h');
  if (short !== -1 && breakpoints.slice(short).some((breakpoint) => breakpoint.ttl === '1h')) {
    return {
      code: 'CACHE_TTL_ORDER',
      message: 'A cache_control breakpoint with ttl "1h" comes after one of 5 minutes.',
      fix: 'Put the 1-hour breakpoints first (tools, then system, then messages): Bedrock wants longer TTLs before shorter ones.',
    };
  }
  return undefined;
}

/**
 * The body with a `cache_control` breakpoint at the end of a file's shared prefix, when the record starts with
 * that prefix: on the last tool, a system block or a block of the first message (a string becomes one text
 * block, which reads the same), and the TTL it was given. Undefined when the record does not share the
 * prefix, its block carries a breakpoint already, or it has Bedrock's four. Bedrock wants longer TTLs before
 * shorter ones: after a record's own 1-hour breakpoint the prefix's is 1 hour too, and before its own
 * 5-minute one, 5 minutes.
 */
export function withSharedPrefixBreakpoint(
  body: Body,
  prefix: MarkedPrefix,
): { readonly body: Body; readonly ttl: CacheTtl } | undefined {
  const messages = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const leading = leadingPrefixes({ ...body, messages });
  if (leading.prefixes[prefix.blocks - 1]?.fingerprint !== prefix.fingerprint) return undefined;
  if (leading.userBreakpoints >= MAX_CACHE_BREAKPOINTS) return undefined;
  const own = cacheBreakpoints({ ...body, messages } as MessagesBody);
  const end = prefix.blocks - 1;
  const ttl = own.some((breakpoint) => breakpoint.block > end && breakpoint.ttl === '1h')
    ? '1h'
    : own.some((breakpoint) => breakpoint.block < end && breakpoint.ttl !== '1h')
      ? '5m'
      : (prefix.ttl ?? '5m');
  const marked = markedAt(body, messages, prefix.blocks - 1, {
    type: 'ephemeral',
    ...(ttl === '1h' ? { ttl } : {}),
  });
  return marked === undefined ? undefined : { body: marked, ttl };
}

/** The body with `breakpoint` on its leading block `index` (tools count as one); undefined if it has one. */
function markedAt(
  body: Body,
  messages: Array<Record<string, unknown>>,
  blockIndex: number,
  breakpoint: Record<string, string>,
): Body | undefined {
  const marked = (block: unknown) =>
    typeof block === 'object' && block !== null && 'cache_control' in block
      ? undefined
      : { ...(block as Record<string, unknown>), cache_control: breakpoint };

  let index = blockIndex;
  const tools = Array.isArray(body.tools) && body.tools.length > 0 ? (body.tools as unknown[]) : undefined;
  if (tools !== undefined) {
    if (index === 0) {
      const last = marked(tools.at(-1));
      return last === undefined ? undefined : { ...body, tools: [...tools.slice(0, -1), last] };
    }
    index -= 1;
  }
  const system = blocksOf(body.system);
  if (index < system.length) {
    const block = marked(system[index]);
    return block === undefined ? undefined : { ...body, system: system.with(index, block) };
  }
  index -= system.length;
  const [first, ...rest] = messages;
  const content = blocksOf(first?.content);
  const block = marked(content[index]);
  if (first === undefined || block === undefined) return undefined;
  return { ...body, messages: [{ ...first, content: content.with(index, block) }, ...rest] };
}

function blocksOf(content: unknown): unknown[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  return Array.isArray(content) ? content : [];
}

/** The call with a breakpoint at the end of its job's shared prefix, and its TTL, when its record shares it. */
export function withSharedPrefixCached<Call extends { readonly body: Body; readonly bodyJson: string }>(
  call: Call,
  prefix: MarkedPrefix | undefined,
): Call & { readonly prefixTtl?: CacheTtl } {
  const marked = prefix === undefined ? undefined : withSharedPrefixBreakpoint(call.body, prefix);
  if (marked === undefined) return call;
  return { ...call, body: marked.body, bodyJson: JSON.stringify(marked.body), prefixTtl: marked.ttl };
}
