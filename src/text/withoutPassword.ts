/** A database URL as it may be shown (messages, `owrt config`): its password replaced by `***`. */
export const withoutPassword = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password === "") return url
    parsed.password = "***"
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@")
  }
}
