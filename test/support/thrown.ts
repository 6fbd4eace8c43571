/** Runs `act` and returns what it threw, which must be an instance of `type`; fails the test otherwise. */
export function thrown<ErrorType extends Error>(
  type: abstract new (...args: never[]) => ErrorType,
  act: () => unknown,
): ErrorType {
  try {
    act();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error(`expected a ${type.name} to be thrown`);
}
