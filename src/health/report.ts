import type { CheckSection, ProbeResult } from '../results.js';
import { CHECKS, type CheckResult, type HealthProbeData } from './types.js';

function sectionOk(checks: readonly CheckResult[]): boolean | null {
  if (checks.some((c) => c.status === 'fail')) return false;
  // Something could not be read: neither a problem found nor a pass.
  if (checks.some((c) => c.status === 'unknown')) return null;
  if (checks.length === 0 || checks.every((c) => c.status === 'not-applicable')) return null;
  return true;
}

/** One `vtpm-agent check` section per health probe: a row per finding (or per passing check), with the remedy. */
export function healthSection(title: string, result: ProbeResult<HealthProbeData> | undefined): CheckSection {
  if (!result) return { name: title, ok: null, summary: 'not run yet', data: null };
  if (!result.ok || !result.data) {
    return { name: title, ok: false, summary: `check could not run: ${result.error?.code ?? 'error'}: ${result.error?.message ?? ''}`, data: { error: result.error ?? null } };
  }
  const checks = result.data.checks;
  const table: string[][] = [['check', 'status', 'reason', 'subject', 'message', 'remedy']];
  for (const c of checks) {
    const label = `${CHECKS[c.check].ref} ${c.check}`;
    const shown = c.findings.filter((f) => f.status !== 'pass');
    if (shown.length === 0) {
      table.push([label, c.status, '', '', c.status === 'not-applicable' ? String(c.facts?.note ?? 'not applicable on this host') : CHECKS[c.check].title, '']);
      continue;
    }
    for (const f of shown) table.push([label, f.status, f.reason, f.subject ?? '', f.message, f.remedy]);
  }
  const summary = checks.map((c) => `${CHECKS[c.check].ref} ${c.check}: ${c.status}${c.findings.length ? ` (${c.findings.length})` : ''}`).join('; ');
  return { name: title, ok: sectionOk(checks), summary: summary || 'no checks enabled', table, data: result.data };
}
