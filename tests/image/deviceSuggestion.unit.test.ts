import { describe, expect, it } from "vitest"
import type { BuilderInfo } from "../../src/image/builderInfo.js"
import { sameDeviceSpelling, suggestDevices } from "../../src/image/deviceSuggestion.js"

const device = (id: string, name: string, supportedDevices: ReadonlyArray<string> = []) => ({
  id,
  name,
  packages: [],
  supportedDevices,
  hasImageMetadata: true,
})

const info: BuilderInfo = {
  target: "ath79/generic",
  architecture: "mips",
  revision: "r24106-10cc5fcd00",
  defaultPackages: [],
  profiles: [
    device("tplink_archer-a7-v5", "TP-Link Archer A7 v5", ["tplink,archer-a7-v5"]),
    device("tplink_archer-c7-v2", "TP-Link Archer C7 v2", ["tplink,archer-c7-v2"]),
    device("tplink_archer-c7-v5", "TP-Link Archer C7 v5", ["tplink,archer-c7-v5"]),
    device("glinet_gl-ar300m16", "GL.iNet GL-AR300M16", ["glinet,gl-ar300m16", "gl-ar300m"]),
    device("glinet_gl-ar300m-nand", "GL.iNet GL-AR300M (NAND)"),
  ],
}

const ids = (requested: string) => suggestDevices(info, requested).map((s) => s.id)

describe("device suggestions never point at other hardware", () => {
  it("suggests nothing for another model or revision (the brick risk)", () => {
    expect(ids("tplink_archer-c6-v3")).toEqual([])
    expect(ids("tplink_archer-c7-v9")).toEqual([])
    expect(ids("tplink_archer-c7-v4")).toEqual([])
    expect(ids("tplink_archer-c8-v5")).toEqual([])
    expect(ids("tplink_archer-a6-v5")).toEqual([])
    expect(ids("glinet_gl-ar300m")).toEqual([])
    expect(ids("glinet_gl-ar150")).toEqual([])
  })

  it("suggests a device for case and separator differences, with its title", () => {
    expect(suggestDevices(info, "TPLink_Archer-C7-V5")).toEqual([
      { id: "tplink_archer-c7-v5", title: "TP-Link Archer C7 v5" },
    ])
    expect(ids("tplink-archer-c7-v5")).toEqual(["tplink_archer-c7-v5"])
    expect(ids("tplink archer c7 v5")).toEqual(["tplink_archer-c7-v5"])
    expect(ids("glinet_gl_ar300m16")).toEqual(["glinet_gl-ar300m16"])
  })

  it("suggests a device for a small typo inside a word", () => {
    expect(ids("tplink_archre-c7-v5")).toEqual(["tplink_archer-c7-v5"])
    expect(ids("tpilnk_archer-c7-v5")).toEqual(["tplink_archer-c7-v5"])
    expect(ids("glinte_gl-ar300m16")).toEqual(["glinet_gl-ar300m16"])
  })

  it("refuses typos in codes and too many edits", () => {
    expect(sameDeviceSpelling("tplink_archer-x7-v5", "tplink_archer-c7-v5")).toBe(false)
    expect(sameDeviceSpelling("tpilnk_archre-c7-v5", "tplink_archer-c7-v5")).toBe(true)
    expect(sameDeviceSpelling("tpilnk_archre_cc7-v5", "tplink_archer-c7-v5")).toBe(false)
    expect(sameDeviceSpelling("ubnt_bulet-m-xw", "ubnt_bullet-m-xw")).toBe(true)
    expect(sameDeviceSpelling("ubnt_bullet-m-xm", "ubnt_bullet-m-xw")).toBe(false)
  })
})
