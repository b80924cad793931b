import { Context, Layer } from "effect"

/** What long work reports as it goes; frontends render it (a TTY line, MCP progress notifications). */
export type ProgressEvent =
  | {
      readonly kind: "bytes"
      readonly task: string
      readonly bytes: number
      readonly total?: number | undefined
    }
  | { readonly kind: "step"; readonly task: string; readonly message: string }
  | { readonly kind: "done"; readonly task: string; readonly message?: string | undefined }

export class Progress extends Context.Tag("owrt/Progress")<
  Progress,
  { readonly report: (event: ProgressEvent) => void }
>() {}

export const silentProgress = Layer.succeed(Progress, { report: () => undefined })
