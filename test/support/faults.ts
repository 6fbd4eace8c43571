/**
 * Makes `method` of `target` throw on its next `times` calls (or the calls `when` picks), then behave again:
 * a step of a function failing part way, as an SDK error or a crash would end it.
 */
export function failNext<Target extends object, Method extends keyof Target>(
  target: Target,
  method: Method,
  options: { times?: number; error?: Error; when?: (...args: unknown[]) => boolean } = {},
): { readonly failures: number } {
  const original = target[method] as unknown as (...args: unknown[]) => Promise<unknown>;
  let remaining = options.times ?? 1;
  const state = { failures: 0 };
  (target as Record<Method, unknown>)[method] = async (...args: unknown[]) => {
    if (remaining > 0 && (options.when?.(...args) ?? true)) {
      remaining -= 1;
      state.failures += 1;
      throw (
        options.error ??
        Object.assign(new Error(`injected ${String(method)} failure`), { name: 'InjectedFault' })
      );
    }
    return original.apply(target, args);
  };
  return state;
}
