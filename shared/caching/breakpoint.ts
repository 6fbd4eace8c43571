import { leadingPrefixes, MAX_CACHE_BREAKPOINTS, type SharedPrefix } from './shared-prefix.ts';

type Body = Readonly<Record<string, unknown>>;

/**
 * The body with a `cache_control` breakpoint at the end of a file's shared prefix, when the record starts with
 * that prefix: on the last tool, a system block or a block of the first message (a string becomes one text
 * block, which reads the same). Undefined when the record does not share the prefix, its block carries a
 * breakpoint already, or it has Bedrock's four.
 */
export function withSharedPrefixBreakpoint(
  body: Body,
  prefix: Pick<SharedPrefix, 'blocks' | 'fingerprint'>,
  ttl?: '1h',
): Body | undefined {
  const messages = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const leading = leadingPrefixes({ ...body, messages });
  if (leading.prefixes[prefix.blocks - 1]?.fingerprint !== prefix.fingerprint) return undefined;
  if (leading.userBreakpoints >= MAX_CACHE_BREAKPOINTS) return undefined;
  const breakpoint = { type: 'ephemeral', ...(ttl === undefined ? {} : { ttl }) };
  const marked = (block: unknown) =>
    typeof block === 'object' && block !== null && 'cache_control' in block
      ? undefined
      : { ...(block as Record<string, unknown>), cache_control: breakpoint };

  let index = prefix.blocks - 1;
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

/** The call with a breakpoint at the end of its job's shared prefix, when its record shares it. */
export function withSharedPrefixCached<Call extends { readonly body: Body; readonly bodyJson: string }>(
  call: Call,
  prefix: Pick<SharedPrefix, 'blocks' | 'fingerprint'> | undefined,
): Call {
  const marked = prefix === undefined ? undefined : withSharedPrefixBreakpoint(call.body, prefix);
  return marked === undefined ? call : { ...call, body: marked, bodyJson: JSON.stringify(marked) };
}
