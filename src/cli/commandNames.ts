/**
 * owrt's commands, in the order `owrt --help` lists them. bin/owrt.cjs keeps a V8 code cache per command
 * under these names (tests/cli/commandNames.unit.test.ts checks that its list is this one).
 */
export const commandNames = [
  "realize",
  "plan",
  "audit",
  "diff",
  "profiles",
  "builders",
  "builds",
  "store",
  "cache",
  "publish",
  "ota",
  "flash",
  "config",
  "mcp",
  "serve",
  "worker",
  "workers",
  "jobs",
] as const

export type CommandName = (typeof commandNames)[number]

export const isCommandName = (name: string | undefined): name is CommandName =>
  (commandNames as ReadonlyArray<string | undefined>).includes(name)
