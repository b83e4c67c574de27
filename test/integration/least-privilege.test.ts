/**
 * `check` and `serve` as the unit's kind of user — an unprivileged system user (nobody here, so
 * the test adds no account) with supplementary group libvirt, no capabilities — on the real host
 * files. Prints the table of what works, what is unknown and why; asserts that nothing the agent
 * could not read is reported as pass (C4's local CA is 0750 tss:root as swtpm installs it).
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import t from 'tap';
import { cliPath, freePort, repoRoot, waitFor } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { requireLibvirt } from '../harness/libvirt.js';
import { execFileSync } from 'node:child_process';

requireLibvirt();
requireCommands('setpriv', 'getent');

const gid = (name: string) => Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);
const NOBODY = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
const asUnitUser = (args: string[]) =>
  spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${gid('nogroup')}`, `--groups=${gid('libvirt')}`, '--inh-caps=-all', '--no-new-privs', process.execPath, '--import', 'tsx', cliPath, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: '/tmp', VTPM_AGENT_CONFIG: '/dev/null' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

interface Check {
  check: string;
  status: string;
  findings: Array<{ reason: string; status: string; subject?: string; message: string }>;
}

t.test('check as an unprivileged libvirt-group user: a table of works / unknown / why, and no pass for what it could not read', async (t) => {
  const child = asUnitUser(['check', '--json', '--set', 'emulation.enabled=false']);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.ok(code === 0 || code === 1 || code === 3, `check ran (exit ${code})`);
  const report = JSON.parse(out) as { probes: Array<{ probe: string; ok: boolean; error?: { message: string } }>; sections: Array<{ name: string; data?: { checks?: Check[] } | null }> };
  const checks = report.sections.flatMap((s) => s.data?.checks ?? []);
  const rows = [['check', 'status', 'why (first finding)']];
  for (const c of checks) {
    const f = c.findings.find((x) => x.status !== 'pass');
    rows.push([c.check, c.status, f ? `${f.reason}: ${f.message.slice(0, 110)}` : '']);
  }
  for (const p of report.probes) rows.push([`probe ${p.probe}`, p.ok ? 'ok' : 'failed', p.error?.message.slice(0, 110) ?? '']);
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  t.comment(`as uid ${NOBODY} + group libvirt:\n${rows.map((r) => `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]}`).join('\n')}`);

  const localca = checks.find((c) => c.check === 'localca');
  const ca = statSync('/var/lib/swtpm-localca', { throwIfNoEntry: false });
  if (ca && (ca.mode & 0o005) === 0 && ca.gid !== gid('libvirt')) {
    t.equal(localca?.status, 'unknown', 'C4 cannot list the local CA: unknown, never pass');
    t.ok(localca?.findings.some((f) => f.reason === 'VTPM_HEALTH_LOCALCA_UNREADABLE_BY_AGENT' && f.subject === '/var/lib/swtpm-localca' && /EACCES/.test(f.message)), 'the finding names the path and the error');
  }
  if (report.probes.some((p) => p.probe === 'guest-inventory' && !p.ok)) {
    t.equal(checks.find((c) => c.check === 'secrets')?.status, 'unknown', 'C12 without the guest inventory: unknown, not "not applicable"');
  }
  const principal = checks.find((c) => c.check === 'principal');
  const qemuConf = statSync('/etc/libvirt/qemu.conf', { throwIfNoEntry: false });
  if (qemuConf && (qemuConf.mode & 0o004) === 0) {
    t.ok(principal?.findings.some((f) => f.subject === '/etc/libvirt/qemu.conf' && /EACCES/.test(f.message)), 'an unreadable qemu.conf is named, with its error');
    t.not(principal?.status, 'pass', 'C3 does not pass on a guessed principal');
  }
});

t.test('serve as the same user: /healthz and /metrics answer', async (t) => {
  const port = await freePort();
  const child = asUnitUser(['serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', 'stateDir=/tmp/vtpm-agent-unpriv-state', '--set', 'emulation.enabled=false', '--log-level', 'warn']);
  t.teardown(() => child.kill('SIGKILL'));
  await waitFor('/healthz', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200, 60_000);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /vtpm_health_check_status|vtpm_probe_success/, 'metrics served');
});
