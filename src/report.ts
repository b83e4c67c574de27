import os from 'node:os';
import { verdictFromResults } from './current-verdict.js';
import type { CheckSection, ProbeResult } from './results.js';
import { LIBVIRT, SWTPM } from './libvirt/facts.js';
import type { Probe } from './probes/types.js';
import type { StateView } from './results.js';
import type { Verdict } from './verdict.js';
import { agentVersion } from './version.js';
import { renderTable } from './util/table.js';

/**
 * The document behind `vtpm-agent check --json` and `/status`. Its shape is a stable contract
 * (documented in the README): fields are only ever added, never renamed or removed.
 */
export interface HostReport {
  schemaVersion: 1;
  agentVersion: string;
  hostname: string;
  generatedAt: string;
  versions: { libvirt: string | null; qemu: string | null; swtpm: string | null };
  verdict: Verdict | null;
  probes: Array<Pick<ProbeResult, 'probe' | 'ok' | 'durationSeconds' | 'error'> & { lastSuccessAt: string | null }>;
  sections: CheckSection[];
}

export function buildReport(state: StateView, probes: Probe[], extraSections: CheckSection[]): HostReport {
  const libvirt = state.get(LIBVIRT)?.data;
  const swtpm = state.get(SWTPM)?.data;
  const sections: CheckSection[] = [];
  for (const probe of probes) {
    if (probe.report) sections.push(probe.report(state.get(probe.name)));
  }
  sections.push(...extraSections);
  return {
    schemaVersion: 1,
    agentVersion: agentVersion(),
    hostname: os.hostname(),
    generatedAt: new Date().toISOString(),
    versions: { libvirt: libvirt?.libvirtVersion ?? null, qemu: libvirt?.qemuVersion ?? null, swtpm: swtpm?.version ?? null },
    verdict: verdictFromResults(state),
    probes: state.all().map((r) => ({
      probe: r.probe,
      ok: r.ok,
      durationSeconds: Number(r.durationSeconds.toFixed(4)),
      ...(r.error ? { error: r.error } : {}),
      lastSuccessAt: r.lastSuccessAt === null ? null : new Date(r.lastSuccessAt).toISOString(),
    })),
    sections,
  };
}

const mark = (ok: boolean | null): string => (ok === null ? '–' : ok ? '✓' : '✗');

export function renderSection(section: CheckSection): string {
  const lines = [`${mark(section.ok)} ${section.name}: ${section.summary}`];
  if (section.table && section.table.length > 1) lines.push(renderTable(section.table).replace(/^/gm, '  '));
  return lines.join('\n');
}

/** Sections that report a problem (a failed health check, a guest at risk or down, Placement drift, …). */
export function sectionsNeedingAttention(report: HostReport): string[] {
  return report.sections.filter((s) => s.ok === false).map((s) => s.name);
}

/** The human-readable form of the report. */
export function renderReport(report: HostReport): string {
  const out: string[] = [];
  out.push(`vtpm-agent ${report.agentVersion} on ${report.hostname}`);
  out.push(`libvirt ${report.versions.libvirt ?? '?'} · QEMU ${report.versions.qemu ?? '?'} · swtpm ${report.versions.swtpm ?? '?'}`);
  out.push('');
  const v = report.verdict;
  if (!v) {
    out.push('Capability verdict: not available (probes did not run)');
  } else {
    const rows: string[][] = [['TPM', 'model', 'usable', 'reasons']];
    for (const c of v.combinations) {
      const reasons = c.reasons.filter((r) => r.severity === 'error');
      rows.push([c.version, c.model, mark(c.usable), reasons.length ? `${reasons[0]!.code}: ${reasons[0]!.message}` : '']);
      for (const r of reasons.slice(1)) rows.push(['', '', '', `${r.code}: ${r.message}`]);
    }
    out.push(renderTable(rows));
    out.push('');
    out.push(`Traits Nova would report: ${v.expectedNovaTraits.join(', ') || '(none)'}`);
    for (const w of v.warnings) out.push(`warning ${w.code}: ${w.message}`);
  }
  const failed = report.probes.filter((p) => !p.ok);
  if (failed.length) {
    out.push('');
    for (const p of failed) out.push(`probe ${p.probe} failed: ${p.error?.code ?? ''} ${p.error?.message ?? ''}`.trimEnd());
  }
  for (const section of report.sections) {
    out.push('');
    out.push(renderSection(section));
  }
  out.push('');
  const attention = sectionsNeedingAttention(report);
  if (!v?.anyUsable) out.push('Result: no vTPM configuration is usable on this host');
  else if (attention.length) out.push(`Result: vTPM usable on this host, but ${attention.length} section(s) need attention: ${attention.join(', ')}`);
  else out.push('Result: vTPM usable on this host');
  return out.join('\n');
}
