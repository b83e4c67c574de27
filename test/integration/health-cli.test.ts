/**
 * `vtpm-agent check --json` on this host: every health section passes or does not apply; an
 * injected principal mismatch (temp nova.conf via --set) turns exactly the C3 check red, with
 * its reason and remedy in the report.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { requireCommands } from '../harness/components.js';
import { requireLibvirt } from '../harness/libvirt.js';
import { runCli } from '../harness/agent.js';
import { renderReport, type HostReport } from '../../src/report.js';
import { healthProbes } from '../../src/health/index.js';
import { CHECK_IDS, type CheckResult, type HealthProbeData } from '../../src/health/types.js';

requireLibvirt();
requireCommands('swtpm', 'swtpm_setup', 'swtpm_ioctl');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' };

function healthChecks(report: HostReport): CheckResult[] {
  return report.sections.filter((s) => s.name.startsWith('Health: ')).flatMap((s) => (s.data as HealthProbeData | null)?.checks ?? []);
}

t.test('healthy host: every health check passes or is not applicable', async (t) => {
  const r = await runCli(['check', '--json', '--set', `stateDir=${tmp}/state`], { env, timeoutMs: 180_000 });
  const report = JSON.parse(r.stdout) as HostReport;
  const sections = report.sections.filter((s) => s.name.startsWith('Health: '));
  t.equal(sections.length, healthProbes.length, 'one section per health probe');
  const checks = healthChecks(report);
  t.same(checks.map((c) => c.check).sort(), [...CHECK_IDS].sort(), 'every check of the registry reported, once');
  for (const c of checks) {
    // Guests of other tests running on this shared libvirtd may be mid-fault; ours are host-wide.
    const foreign = (s?: string) => (s ?? '').startsWith('vtpmtest-') || (s ?? '').includes('/run/libvirt/qemu/swtpm/');
    const own = c.findings.filter((f) => f.status !== 'pass' && !foreign(f.subject));
    t.same(own, [], `${c.check}: ${c.status}`);
  }
  // The daemon owns stateDir: a check run (often as root) writes nothing there.
  t.same(existsSync(`${tmp}/state`) ? readdirSync(`${tmp}/state`, { recursive: true }) : [], [], 'check wrote nothing under stateDir');
  const text = renderReport(report);
  t.match(text, /Health: swtpm local CA: C4 localca: pass/);
  t.match(text, /Health: AppArmor \/ SELinux: C7 apparmor: not-applicable; C8 selinux: not-applicable/);
});

t.test('principal mismatch: exactly C3 turns red, with reason and remedy', async (t) => {
  const nova = path.join(tmp, 'nova.conf');
  writeFileSync(nova, '[libvirt]\nvirt_type = qemu\nswtpm_enabled = true\nswtpm_user = root\nswtpm_group = root\n');
  const r = await runCli(['check', '--json', '--set', `stateDir=${tmp}/state2`, '--set', `health.novaConf=[${nova}]`], { env, timeoutMs: 180_000 });
  t.equal(r.stderr.includes('could not run'), false, r.stderr.slice(0, 300));
  t.equal(r.code, 0, 'exit 0: vTPM is usable (the 0/1/2 contract)');
  const report = JSON.parse(r.stdout) as HostReport;
  const checks = healthChecks(report);
  const principal = checks.find((c) => c.check === 'principal')!;
  t.equal(principal.status, 'fail');
  t.same(principal.findings.map((f) => f.reason), ['VTPM_HEALTH_PRINCIPAL_MISMATCH', 'VTPM_HEALTH_PRINCIPAL_MISMATCH']);
  t.match(principal.findings[0]!.remedy, /swtpm_user\/swtpm_group name the same principal/);
  const nc = checks.find((c) => c.check === 'nova-config')!;
  t.equal(nc.status, 'pass', `nova.conf is read now and agrees with the real domain capabilities: ${JSON.stringify(nc.findings)}`);
  t.match(renderReport(report), /C3 principal\s+fail\s+VTPM_HEALTH_PRINCIPAL_MISMATCH/);
  t.match(renderReport(report), /Result: vTPM usable on this host, but \d+ section\(s\) need attention: .*Health: swtpm principal/);
  const strict = await runCli(['check', '--strict', '--set', `stateDir=${tmp}/state2`, '--set', `health.novaConf=[${nova}]`], { env, timeoutMs: 180_000 });
  t.equal(strict.code, 3, 'with --strict: exit 3, usable but a section needs attention');
  t.match(strict.stdout, /need attention: .*Health: swtpm principal/);
});
