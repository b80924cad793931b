import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeBuildRequest } from "../../src/asu/buildRequest.js"
import {
  pythonDictRepr,
  pythonJsonDumpsSorted,
  pythonListRepr,
  pythonRepr,
  requestHash,
} from "../../src/asu/requestHash.js"

const decode = (body: unknown) => {
  const decoded = decodeBuildRequest(body)
  if (Either.isLeft(decoded)) throw new Error(JSON.stringify(decoded.left))
  return decoded.right
}

const base = { version: "1.2.3", target: "testtarget/testsubtarget", profile: "testprofile" }

describe("the ASU request hash", () => {
  // The vectors of upstream's tests/test_api.py (main): the same request hashes alike on both servers.
  it("matches upstream's vectors, whatever the package order", () => {
    const packages = ["test1", "zzz", "test2", "aaa"]
    const diff = "1c4a79c6b711a576996cf9a5e7046a4581008c4466574096266f0e6ea4208fbc"
    const plain = "c5a849e05b60611b465042594fc3489a44f7695c3d09e36433a577ee772ad7b7"
    expect(requestHash(decode({ ...base, packages, diff_packages: true }))).toBe(diff)
    expect(requestHash(decode({ ...base, packages: [...packages].sort(), diff_packages: true }))).toBe(diff)
    expect(requestHash(decode({ ...base, packages }))).toBe(plain)
    expect(requestHash(decode({ ...base, packages: [...packages].sort() }))).toBe(plain)
    expect(requestHash(decode({ ...base, defaults: "echo" }))).toBe(
      "ba50558496f8fead41e8d5bc72afd1ad7d27bc053afb550a8bf6ee3bbcc64952",
    )
  })

  it("treats a null and an empty defaults alike, and duplicate packages as one", () => {
    expect(requestHash(decode({ ...base, defaults: null }))).toBe(
      requestHash(decode({ ...base, defaults: "" })),
    )
    expect(requestHash(decode({ ...base, packages: ["a", "b"] }))).toBe(
      requestHash(decode({ ...base, packages: ["b", "a", "a"] })),
    )
  })

  it("hashes `,` in the profile as `_`, and every option", () => {
    expect(requestHash(decode({ ...base, profile: "test,profile" }))).toBe(
      requestHash(decode({ ...base, profile: "test_profile" })),
    )
    const hashes = new Set(
      [
        base,
        { ...base, filesystem: "ext4" },
        { ...base, rootfs_size_mb: 100 },
        { ...base, repositories_mode: "append" },
        { ...base, repository_keys: ["k"] },
        { ...base, repositories: { a: "https://example.org/a" } },
        { ...base, packages_versions: { test1: "1.0" } },
        { ...base, version_code: "r1" },
      ].map((body) => requestHash(decode(body))),
    )
    expect(hashes.size).toBe(8)
  })

  it("renders values as Python's str() and json.dumps do", () => {
    expect(pythonRepr("a'b")).toBe(`"a'b"`)
    expect(pythonRepr(`a'"b`)).toBe(`'a\\'"b'`)
    expect(pythonRepr("l1\nl2\\")).toBe("'l1\\nl2\\\\'")
    expect(pythonListRepr([])).toBe("[]")
    expect(pythonListRepr(["k", "j"])).toBe("['k', 'j']")
    expect(pythonDictRepr({ b: "1", a: "2" })).toBe("{'b': '1', 'a': '2'}")
    expect(pythonJsonDumpsSorted({ b: "1", a: "é" })).toBe('{"a": "\\u00e9", "b": "1"}')
  })
})

describe("the ASU build request", () => {
  it("applies upstream's defaults", () => {
    expect(decode(base)).toEqual({
      ...base,
      distro: "openwrt",
      version_code: "",
      packages: [],
      packages_versions: {},
      diff_packages: false,
      defaults: null,
      rootfs_size_mb: null,
      filesystem: null,
      repositories: {},
      repositories_mode: "replace",
      repository_keys: [],
      client: null,
    })
  })

  it("answers bad bodies with pydantic's issues", () => {
    const issues = (body: unknown) => {
      const decoded = decodeBuildRequest(body)
      return Either.isLeft(decoded) ? decoded.left : []
    }
    expect(issues(undefined)).toEqual([
      { type: "missing", loc: ["body"], msg: "Field required", input: null },
    ])
    const missing = { profile: "testprofile", target: "testtarget/testsubtarget" }
    expect(issues(missing)).toEqual([
      { type: "missing", loc: ["body", "version"], msg: "Field required", input: missing },
    ])
    const first = (body: unknown) => issues(body)[0]
    expect(first({ ...base, packages: "testpackage" })).toEqual({
      type: "list_type",
      loc: ["body", "packages"],
      msg: "Input should be a valid list",
      input: "testpackage",
    })
    expect(first({ ...base, rootfs_size_mb: 0 })?.msg).toBe("Input should be greater than or equal to 1")
    expect(first({ ...base, rootfs_size_mb: 1025 })?.msg).toBe("Input should be less than or equal to 1024")
    expect(first({ ...base, defaults: "#".repeat(20481) })?.msg).toBe(
      "String should have at most 20480 characters",
    )
    expect(first({ ...base, packages: ["+vim"] })?.type).toBe("string_pattern_mismatch")
    expect(first({ ...base, target: "x86" })?.loc).toEqual(["body", "target"])
  })
})
