/**
 * The fast path of the file sources: walk a chunk of complete lines and hand over only those
 * that can matter. nova-compute writes millions of DEBUG/INFO lines; every Barbican failure and
 * restart failure is logged at WARNING or above (castellan LOG.error, Nova LOG.warning /
 * LOG.exception). In oslo.log's format the level sits right after `<date> <time>.<ms> <pid> `, so
 * one byte tells whether a line is a candidate, and the rest is never decoded. Lines of any other
 * shape are always candidates (then the classifier reads their text), so an unusual format costs
 * speed, never correctness.
 */

const NEWLINE = 0x0a;
const SPACE = 0x20;
const DASH = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const E = 0x45; // ERROR
const W = 0x57; // WARNING / WARN
const C = 0x43; // CRITICAL

/** Byte offset just after the level's first letter, or -1 when the line is not oslo-shaped. */
function levelByte(buf: Buffer, start: number, end: number): number {
  // `2026-11-28 16:00:00.123 ` is 24 bytes (`T` instead of the space is accepted too).
  if (end - start < 28 || buf[start + 4] !== DASH || buf[start + 7] !== DASH) return -1;
  let p = start + 19;
  if (buf[p] === 0x2e) {
    p += 1;
    while (p < end && buf[p]! >= ZERO && buf[p]! <= NINE) p += 1;
  }
  if (buf[p] !== SPACE) return -1;
  p += 1;
  const digitsFrom = p;
  while (p < end && buf[p]! >= ZERO && buf[p]! <= NINE) p += 1;
  if (p === digitsFrom || buf[p] !== SPACE) return -1;
  return p + 1 < end ? buf[p + 1]! : -1;
}

/**
 * Calls `visit(start, end)` (end excludes the newline) for every candidate line in
 * `buf[from, to)`. `to` must be at a line boundary (just after a newline, or the buffer's end).
 */
export function scanCandidateLines(buf: Buffer, from: number, to: number, visit: (start: number, end: number) => void): void {
  let start = from;
  while (start < to) {
    let end = buf.indexOf(NEWLINE, start);
    if (end === -1 || end >= to) end = to;
    const level = levelByte(buf, start, end);
    if (level === -1 || level === E || level === W || level === C) visit(start, end);
    start = end + 1;
  }
}

/** The same test for one line `buf[start, end)` (the CRI source checks each joined message). */
export function isCandidateLine(buf: Buffer, start: number, end: number): boolean {
  const level = levelByte(buf, start, end);
  return level === -1 || level === E || level === W || level === C;
}
