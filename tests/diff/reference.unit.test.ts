import { describe, expect, it } from "vitest"
import { parseReference, storePathOf } from "../../src/diff/reference.js"

describe("parseReference", () => {
  it("tells profiles, build ids and paths apart by their form", () => {
    expect(parseReference("home-ap")).toEqual({
      _tag: "profile",
      spec: "home-ap",
      id: "home-ap",
      rev: undefined,
    })
    expect(parseReference("home-ap@3")).toMatchObject({ _tag: "profile", id: "home-ap", rev: "3" })
    // A git ref may hold a slash: the part before `@` decides.
    expect(parseReference("home-ap@origin/main")).toMatchObject({ _tag: "profile", rev: "origin/main" })
    expect(parseReference("42")).toEqual({ _tag: "build", id: 42 })
    expect(parseReference("store/0123456789abcdef-x-artifacts")).toMatchObject({ _tag: "path" })
    expect(parseReference("/abs/path")).toMatchObject({ _tag: "path" })
    expect(parseReference("./rel@x")).toMatchObject({ _tag: "path" })
  })

  it("finds malformed references malformed", () => {
    for (const text of ["", " ", "home-ap@", "@3", "Home AP", "Home@3", "99999999999999999999"]) {
      expect(parseReference(text)._tag, text).toBe("malformed")
    }
  })
})

describe("storePathOf", () => {
  it("names the store path a path lies in, at or below its directory", () => {
    const named = { _tag: "storePath", key: "0123456789abcdef", name: "ap-artifacts" }
    expect(storePathOf("/p/store", "/p/store/0123456789abcdef-ap-artifacts", "/")).toEqual(named)
    expect(storePathOf("/p/store", "store/0123456789abcdef-ap-artifacts/images/x.bin", "/p")).toEqual(named)
    expect(storePathOf("/p/store/", "../store/0123456789abcdef-ap-artifacts/", "/p/profiles")).toEqual(named)
  })

  it("says when a path is outside the store, or in it but in no store path", () => {
    expect(storePathOf("/p/store", "/etc", "/")).toEqual({ _tag: "outside" })
    expect(storePathOf("/p/store", "/p/store", "/")).toEqual({ _tag: "outside" })
    expect(storePathOf("/p/store", "/p/store-2/0123456789abcdef-x", "/")).toEqual({ _tag: "outside" })
    expect(storePathOf("/p/store", "/p/store/.work/1.2.x", "/")._tag).toBe("malformed")
    expect(storePathOf("/p/store", "/p/store/owrt.db", "/")._tag).toBe("malformed")
  })
})
