import { describe, expect, it } from "vitest"
import { withoutPassword } from "../../src/text/withoutPassword.js"

describe("database URLs as they may be shown", () => {
  it("hides a password in the user information and in the query, and leaves the rest", () => {
    expect(withoutPassword("postgres://owrt:s3cret@db:5432/records")).toBe(
      "postgres://owrt:***@db:5432/records",
    )
    expect(withoutPassword("postgres://owrt@db/records?password=s3cret&sslmode=require")).toBe(
      "postgres://owrt@db/records?password=***&sslmode=require",
    )
    expect(withoutPassword("postgres://owrt@db/records")).toBe("postgres://owrt@db/records")
    expect(withoutPassword("postgress://u:s3cret@db/x")).not.toContain("s3cret")
    // Not a URL `new URL` takes (a port out of range): hidden all the same.
    expect(withoutPassword("postgres://u:s3cret@db:99999/x?password=a&password=b")).toBe(
      "postgres://u:***@db:99999/x?password=***&password=***",
    )
  })
})
