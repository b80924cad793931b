import type { OperationContext } from "../operations/operation.js"

/** How the CLI calls library operations: builds it starts are recorded as asked by `cli`. */
export const cliCaller: OperationContext = { requestedBy: "cli" }
