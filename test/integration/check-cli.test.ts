import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { requireCommands } from '../harness/components.js';
import { requireLibvirt, LIBVIRT_URI } from '../harness/libvirt.js';
import { runCli } from '../harness/agent.js';
import type { HostReport } from '../../src/report.js';

requireLibvirt();
requireCommands('swtpm', 'swtpm_setup', 'swtpm_ioctl');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-check-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
// The CLI must not pick up a config file from the host running the tests.
const env = { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' };

/** What libvirt itself says, read independently of the agent's parser. */
function libvirtTpm(): { versions: string[]; models: string[]; emulator: boolean } {
  const virtType = execFileSync('sh', ['-c', 'test -e /dev/kvm && echo kvm || echo qemu']).toString().trim();
  const xml = execFileSync('virsh', ['-c', LIBVIRT_URI, 'domcapabilities', '--virttype', virtType]).toString();
  const tpm = /<tpm supported='yes'>([\s\S]*?)<\/tpm>/.exec(xml)?.[1] ?? '';
  const values = (name: string) => [...(new RegExp(`<enum name='${name}'>([\\s\\S]*?)</enum>`).exec(tpm)?.[1] ?? '').matchAll(/<value>([^<]+)<\/value>/g)].map((m) => m[1]!);
  return { versions: values('backendVersion'), models: values('model'), emulator: values('backendModel').includes('emulator') };
}

t.test('check --json on this host agrees with libvirt and finds all three configurations usable', async (t) => {
  const result = await runCli(['check', '--json'], { env });
  t.equal(result.code, 0, `exit 0 (stderr: ${result.stderr.slice(0, 500)})`);
  const report = JSON.parse(result.stdout) as HostReport;
  t.equal(report.schemaVersion, 1);
  t.match(report.versions, { libvirt: /^\d+\.\d+/, qemu: /^\d+\.\d+/, swtpm: /^\d+\.\d+/ });
  const truth = libvirtTpm();
  t.ok(truth.emulator, 'libvirt offers the emulator backend');
  const expected = [
    ...truth.versions.map((v) => (v === '1.2' ? 'COMPUTE_SECURITY_TPM_1_2' : 'COMPUTE_SECURITY_TPM_2_0')),
    ...truth.models.map((m) => (m === 'tpm-tis' ? 'COMPUTE_SECURITY_TPM_TIS' : 'COMPUTE_SECURITY_TPM_CRB')),
  ].sort();
  t.same(report.verdict?.expectedNovaTraits, expected, 'the traits Nova would report match libvirt');
  const usable = Object.fromEntries(report.verdict!.combinations.map((c) => [`${c.version} ${c.model}`, c.usable]));
  t.same(usable, { '1.2 tpm-tis': true, '2.0 tpm-tis': true, '2.0 tpm-crb': true });
  for (const probe of ['libvirt', 'swtpm', 'host']) t.ok(report.probes.find((p) => p.probe === probe)?.ok, `probe ${probe} ok`);
});

t.test('the human table shows each configuration', async (t) => {
  const result = await runCli(['check'], { env });
  t.equal(result.code, 0);
  t.match(result.stdout, /1\.2\s+tpm-tis\s+✓/);
  t.match(result.stdout, /2\.0\s+tpm-crb\s+✓/);
  t.match(result.stdout, /Result: vTPM usable on this host/);
});

t.test('without swtpm on PATH nothing is usable, and the check says why (exit 1)', async (t) => {
  const bin = path.join(tmp, 'bin-no-swtpm');
  execFileSync('mkdir', ['-p', bin]);
  for (const tool of ['virsh']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`]).toString().trim(), path.join(bin, tool));
  const result = await runCli(['check', '--json'], { env: { ...env, PATH: bin } });
  t.equal(result.code, 1, `exit 1 (stderr: ${result.stderr.slice(0, 300)})`);
  const report = JSON.parse(result.stdout) as HostReport;
  t.equal(report.verdict?.anyUsable, false);
  for (const c of report.verdict!.combinations) {
    t.equal(c.usable, false);
    t.ok(c.reasons.some((r) => r.code === 'SWTPM_MISSING' && /swtpm is not installed/.test(r.message)), `${c.version} ${c.model}: SWTPM_MISSING`);
  }
  const text = await runCli(['check'], { env: { ...env, PATH: bin } });
  t.match(text.stdout, /SWTPM_MISSING: swtpm is not installed or not on PATH/);
  t.match(text.stdout, /no vTPM configuration is usable/);
});

t.test('invalid configuration: exit 78 and the message names the key', async (t) => {
  const file = path.join(tmp, 'bad.yaml');
  writeFileSync(file, 'listen:\n  prot: 9643\nlibvirt:\n  timeoutSeconds: -1\n');
  const result = await runCli(['check', '--config', file], { env });
  t.equal(result.code, 78);
  t.match(result.stderr, /listen: unknown key\(s\) "prot"/);
  t.match(result.stderr, /libvirt\.timeoutSeconds/);
  const viaSet = await runCli(['serve', '--set', 'listen.port=notaport'], { env });
  t.equal(viaSet.code, 78);
  t.match(viaSet.stderr, /listen\.port/);
});

t.test('usage errors', async (t) => {
  t.equal((await runCli(['frobnicate'], { env })).code, 64);
  t.equal((await runCli(['check', '--no-such-flag'], { env })).code, 64);
  const version = await runCli(['version'], { env });
  t.equal(version.code, 0);
  t.match(version.stdout, /^vtpm-agent, version \d+\.\d+\.\d+ \(revision: /);
});
