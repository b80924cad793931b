import manifest from "../package.json" with { type: "json" }

export const owrtVersion: string = manifest.version
