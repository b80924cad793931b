/**
 * Names longer than this are never matched: ids, keys and device names are short, and a name that arrives
 * from outside (a command-line argument, an MCP or HTTP request) can be megabytes long.
 */
export const maxMatchedNameLength = 256

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment), for "did you
 * mean" hints: typing `mdoe` for `mode` is one slip, not two.
 *
 * With `max`, the work is bounded: any distance above `max` is reported as `max + 1`, without filling the
 * rest of the table (a length difference above `max` costs nothing at all). Memory is three rows of the
 * shorter word, never a full table.
 */
export const editDistance = (a: string, b: string, max = Number.POSITIVE_INFINITY): number => {
  if (Math.abs(a.length - b.length) > max) return max + 1
  // The columns follow the shorter word: the rows kept are that long.
  const [long, short] = a.length >= b.length ? [a, b] : [b, a]
  const cols = short.length + 1
  let beforePrevious: Array<number> = new Array(cols).fill(0)
  let previous: Array<number> = Array.from({ length: cols }, (_, j) => j)
  let current: Array<number> = new Array(cols).fill(0)
  for (let i = 1; i <= long.length; i++) {
    current[0] = i
    let rowMinimum = i
    for (let j = 1; j < cols; j++) {
      const cost = long[i - 1] === short[j - 1] ? 0 : 1
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost)
      if (i > 1 && j > 1 && long[i - 1] === short[j - 2] && long[i - 2] === short[j - 1])
        best = Math.min(best, (beforePrevious[j - 2] ?? 0) + 1)
      current[j] = best
      if (best < rowMinimum) rowMinimum = best
    }
    // Every later row is at least this row's minimum: past the bound, the answer is "too far".
    if (rowMinimum > max) return max + 1
    ;[beforePrevious, previous, current] = [previous, current, beforePrevious]
  }
  const distance = previous[cols - 1] ?? 0
  return distance > max ? max + 1 : distance
}

/**
 * The candidate closest to `input`, when it is close enough to be a plausible typo: at most a third of the
 * longer word may differ (so `pacakges` → `packages`, but `foo` suggests nothing). Names longer than
 * `maxMatchedNameLength` are not matched, and each comparison stops once it is past the allowed distance,
 * so the cost is bounded whatever the input.
 */
export const closestMatch = (input: string, candidates: Iterable<string>): string | undefined => {
  if (input.length > maxMatchedNameLength) return undefined
  const wanted = input.toLowerCase()
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of candidates) {
    if (candidate.length > maxMatchedNameLength) continue
    const limit = Math.max(1, Math.floor(Math.max(input.length, candidate.length) / 3))
    // Only a strictly closer candidate replaces the best one (the first of equals wins).
    const bound = Math.min(limit, bestDistance - 1)
    if (bound < 0 || Math.abs(input.length - candidate.length) > bound) continue
    const distance = editDistance(wanted, candidate.toLowerCase(), bound)
    if (distance <= bound) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/**
 * A name from outside, shortened for echoing in a message: the first `keep` characters and how long it
 * really was. Short names come back unchanged.
 */
export const elideName = (name: string, keep = 64): string =>
  name.length <= keep ? name : `${name.slice(0, keep)}… (${name.length} characters)`
