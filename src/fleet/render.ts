/** The human-readable `vtpm-agent fleet` report. */
import { renderTable } from '../util/table.js';
import type { FleetFailure, FleetReport } from './run.js';

const yes = (b: boolean): string => (b ? 'yes' : 'no');
const short = (trait: string): string => trait.replace(/^COMPUTE_SECURITY_TPM_/, '');

export function renderFleet(r: FleetReport): string {
  const out: string[] = [];
  out.push(
    `Placement: ${r.placement.providers} compute provider(s), ${r.placement.requests} requests (microversion ${r.placement.microversion}); fencing trait ${r.placement.fencingTrait} ${r.placement.fencingTraitExists ? 'in use' : 'not in use (no agent fences)'}`,
  );
  out.push(r.prometheus ? `Prometheus: ${r.prometheus.url}: ${r.prometheus.agents} agent(s), ${r.prometheus.up} up` : 'Prometheus: not asked (--prometheus URL joins the agents\' verdicts)');
  out.push(`Nova: ${r.nova.flavors} flavor(s) · Glance: ${r.glance.images} image(s) · ${r.requests.length} ask for a vTPM`);
  out.push('');
  out.push('Hosts');
  out.push(
    renderTable([
      ['provider', 'TPM traits', 'fenced', 'agent', 'verified', 'drift', 'guests at risk'],
      ...r.hosts.map((h) => [
        h.provider,
        h.tpmTraits.map(short).join(',') || '-',
        yes(h.fenced),
        h.agent,
        h.verified === null ? '?' : h.verified.join(',') || 'none',
        h.drift.map((d) => `${short(d.trait)} ${d.state}`).join(', ') || '-',
        Object.entries(h.guestsAtRisk).map(([k, n]) => `${n} ${k}`).join(', ') || '-',
      ]),
    ]).replace(/^/gm, '  '),
  );
  out.push('');
  out.push('Capacity per TPM version × model (hosts)');
  out.push(
    renderTable([
      ['version', 'model', 'advertised', 'verified', 'fenced', 'ready', 'no verdict'],
      ...r.capacity.map((c) => [c.version, c.model, String(c.advertised), String(c.verified), String(c.fenced), String(c.ready), String(c.unknown)]),
    ]).replace(/^/gm, '  '),
  );
  if (r.requests.length) {
    out.push('');
    out.push('Flavors and images asking for a vTPM');
    out.push(
      renderTable([
        ['kind', 'name', 'version', 'model', 'secret security', `trait:${r.placement.fencingTrait}`],
        ...r.requests.map((q) => [q.source, q.name, q.version ?? '-', q.model ?? '(tpm-tis)', q.secretSecurity ?? '-', q.source === 'image' ? 'n/a' : (q.fencingTraitSpec ?? '-')]),
      ]).replace(/^/gm, '  '),
    );
  }
  out.push('');
  if (r.findings.length) {
    out.push(`Findings (${r.findings.length})`);
    out.push(renderTable([['kind', 'subject', 'detail'], ...r.findings.map((f) => [f.kind, f.subject, f.detail])]).replace(/^/gm, '  '));
    out.push('');
    out.push(`Result: ${r.findings.length} finding(s)`);
  } else {
    const judged = r.hosts.some((h) => h.verified !== null);
    out.push(
      judged
        ? 'Result: consistent: advertised configurations are verified, every vTPM flavor and image can run'
        : 'Result: no findings in Placement, flavors and images (host verdicts not checked: pass --prometheus URL)',
    );
  }
  return out.join('\n');
}

export function renderFailures(failures: FleetFailure[]): string {
  return failures.map((f) => `vtpm-agent fleet: could not read ${f.source}: ${f.code}: ${f.message}`).join('\n');
}
