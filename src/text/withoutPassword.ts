/**
 * A database URL as it may be shown (messages, `owrt config`): its password replaced by `***`, in the user
 * information and in a `password=` query parameter (which pg also reads).
 */
export const withoutPassword = (url: string): string => {
  try {
    const parsed = new URL(url)
    const inQuery = parsed.searchParams.has("password")
    if (parsed.password === "" && !inQuery) return url
    if (parsed.password !== "") parsed.password = "***"
    if (inQuery) parsed.searchParams.set("password", "***")
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@").replace(/([?&]password=)[^&]*/g, "$1***")
  }
}
