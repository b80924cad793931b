/** A replacement of exact text in a dependency's file when it is bundled (see bundlePatches.mjs). */
export interface DependencyPatch {
  readonly name: string
  readonly file: RegExp
  readonly text: string
  readonly replacement: string
  readonly optional?: (source: string) => boolean
  /** Every occurrence of `text` (at least one), not the first only. */
  readonly all?: boolean
}
export declare const effectStackProbe: DependencyPatch
export declare const renderedBeep: string
export declare const cliPromptBeep: DependencyPatch
export declare const schemaClassBase: DependencyPatch
export declare const schemaKindClasses: DependencyPatch
export declare const xxhashCompile: DependencyPatch
export declare const dependencyPatches: ReadonlyArray<DependencyPatch>
/** Every patch for `path` applied to `source`; the names of those applied are added to `applied`. */
export declare const applyDependencyPatches: (path: string, source: string, applied?: Set<string>) => string
export declare const dependencyPatchesPlugin: (options: {
  readonly everyPatch: boolean
}) => import("esbuild").Plugin
