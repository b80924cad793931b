/**
 * A query made on its first call. Making an `SqlSchema` query compiles its request and row schemas into
 * parsers; a record service makes all of its queries when its layer is built, and every command builds every
 * record service, so without this each run would pay for dozens of queries it never runs (~10 ms a start).
 */
export const lazyQuery = <Args extends ReadonlyArray<unknown>, R>(
  make: () => (...args: Args) => R,
): ((...args: Args) => R) => {
  let query: ((...args: Args) => R) | undefined
  return (...args) => {
    query ??= make()
    return query(...args)
  }
}
