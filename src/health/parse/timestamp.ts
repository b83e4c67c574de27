/**
 * The time a log line carries itself, in Unix ms, or null. Used so that a backlog read for the
 * first time (no cursor) dates its events by when they happened, not by when they were read.
 *
 * - audit records, in audit.log and in the kernel log: `audit(1764324311.552:219)`;
 * - a leading ISO 8601 time with a zone: QEMU `-msg timestamp=on` (`2026-11-28T17:37:22.923284Z`),
 *   libvirt's domain log (`2026-11-28 17:37:03.429+0000: …`), rsyslog's high-precision format.
 *
 * Times without a zone (classic syslog `Nov 28 10:05:11`, no year either) are not trusted: null.
 */
export function lineTime(line: string): number | null {
  const audit = /\baudit\((\d{9,12})(?:\.(\d{1,9}))?:\d+\)/.exec(line);
  if (audit) return Number(audit[1]) * 1000 + Number((audit[2] ?? '0').padEnd(3, '0').slice(0, 3));
  const iso = /^\s*(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?\s?(Z|[+-]\d\d:?\d\d)\b/.exec(line);
  if (iso) {
    const zone = iso[4] === 'Z' ? 'Z' : `${iso[4]!.slice(0, 3)}:${iso[4]!.slice(-2)}`;
    const ms = Date.parse(`${iso[1]}T${iso[2]}${(iso[3] ?? '').slice(0, 4)}${zone}`);
    return Number.isFinite(ms) ? ms : null;
  }
  return null;
}

/** swtpm_setup's `Starting vTPM manufacturing as tss:tss @ Sat 28 Nov 2026 05:37:02 PM UTC` (also `Ending …`). */
export function manufactureTime(line: string): number | null {
  const m = /vTPM manufacturing .*@ (.+?)\s*$/.exec(line);
  if (!m || !/\b(UTC|GMT|[+-]\d{4})\b/.test(m[1]!)) return null;
  const ms = Date.parse(m[1]!);
  return Number.isFinite(ms) ? ms : null;
}
