/**
 * Host-root mode, as the image runs it: the built agent (`node dist/cli.js check --json`) with
 * `hostRoot` pointing at a prepared directory tree (what a pod sees at /host), and at `/`.
 * The same binary must read nova.conf, compute_id, passwd/group, the swtpm state dir and /proc
 * from under the host root, while libvirt is still reached through its socket.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { requireCommands } from '../harness/components.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the report is walked as plain JSON */
const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/cli.js');
requireCommands('virsh', 'swtpm', 'swtpm_setup', 'hostname', 'pgrep');

/** identity.libvirtContainerPaths by default: each must be reported, reachable or why not. */
const LIBVIRT_CONTAINER_PATHS = ['/var/log/swtpm', '/etc/libvirt/secrets', '/var/lib/swtpm-localca'];

/** Newest mtime under a directory (ms). */
function newest(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return max;
}

// The built agent must be the current source: build it when dist/ is missing or older.
if (!existsSync(CLI) || statSync(CLI).mtimeMs < newest(path.join(ROOT, 'src'))) {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit', timeout: 300_000 });
}

const work = mkdtempSync(path.join(os.tmpdir(), 'vtpm-hostroot-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const UUID = '2b8e1a6e-7d3c-4f3a-9a39-5c1f0e6a7b80';
const FAKE_LIBVIRTD_PID = 424242;

/** A host as a pod sees it under /host, with libvirtd in a container of its own. */
function prepareHost(): string {
  const host = path.join(work, 'host');
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(host, rel)), { recursive: true });
    writeFileSync(path.join(host, rel), text);
  };
  // An swtpm principal that exists only in this tree, so a lookup on the real / would miss it.
  put('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\nswtpm:x:9998:9998:swtpm:/var/lib/swtpm:/usr/sbin/nologin\n');
  put('etc/group', 'root:x:0:\nswtpm:x:9998:\n');
  put('etc/nova/nova.conf', '[DEFAULT]\nhost = compute-01.example.org\nresume_guests_state_on_host_boot = true\n[libvirt]\nswtpm_enabled = true\n');
  put('var/lib/nova/compute_id', `${UUID}\n`);
  mkdirSync(path.join(host, 'var/lib/libvirt/swtpm'), { recursive: true });
  chmodSync(path.join(host, 'var/lib/libvirt/swtpm'), 0o711);
  put('proc/sys/kernel/random/boot_id', 'd5c3b1a0-1111-4222-8333-444455556666\n');
  put('proc/1/comm', 'systemd\n');
  put('proc/1/cmdline', '/sbin/init\0');
  symlinkSync(host, path.join(host, 'proc/1/root'));
  // The libvirt container's private files, reachable only through /proc/<pid>/root.
  const container = path.join(work, 'libvirt-container');
  for (const d of ['var/log/swtpm/libvirt/qemu', 'etc/libvirt/secrets', 'var/lib/swtpm-localca']) mkdirSync(path.join(container, d), { recursive: true });
  put(`proc/${FAKE_LIBVIRTD_PID}/comm`, 'libvirtd\n');
  put(`proc/${FAKE_LIBVIRTD_PID}/cmdline`, '/usr/sbin/libvirtd\0');
  symlinkSync(container, path.join(host, `proc/${FAKE_LIBVIRTD_PID}/root`));
  return host;
}

async function check(hostRoot: string, extra: string[] = []): Promise<{ code: number; report: any; stderr: string }> {
  let code = 0;
  let stdout = '';
  let stderr = '';
  try {
    ({ stdout, stderr } = await execFileAsync(process.execPath, [CLI, 'check', '--json', '--set', `hostRoot=${hostRoot}`, ...extra], {
      cwd: work,
      env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' },
      timeout: 180_000,
      maxBuffer: 32 * 1024 * 1024,
    }));
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    code = typeof e.code === 'number' ? e.code : -1;
    stdout = e.stdout ?? '';
    stderr = e.stderr ?? '';
  }
  let report: any = null;
  try {
    report = JSON.parse(stdout);
  } catch {
    // left null: the assertions below say what was printed
  }
  return { code, report, stderr };
}

const section = (report: any, name: string) => report?.sections?.find((s: any) => s.name === name);
const realProvider = execFileSync('virsh', ['-r', '-q', '-c', 'qemu:///system', 'hostname'], { encoding: 'utf8' }).trim();
const realFqdn = execFileSync('hostname', ['--fqdn'], { encoding: 'utf8' }).trim();
const libvirtdPids = (): number[] => {
  try {
    return execFileSync('pgrep', ['-x', 'libvirtd'], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    return []; // between a stop and a start by another test
  }
};

t.test('hostRoot = a prepared tree: every host file is read there; libvirt still through its socket', async (t) => {
  const host = prepareHost();
  const { code, report, stderr } = await check(host, ['--set', 'swtpm.user=swtpm', '--set', 'swtpm.group=swtpm', '--set', 'emulation.runAs=self']);
  t.ok(report, `a JSON report (stderr: ${stderr.slice(-2000)})`);
  t.equal(code, 0, 'vTPM usable: the swtpm principal and state dir were found in the tree');
  const host_ = report.probes.find((p: any) => p.probe === 'host');
  t.equal(host_?.ok, true);
  t.equal(report.probes.find((p: any) => p.probe === 'libvirt')?.ok, true, 'libvirt reached through the real socket');
  const id = section(report, 'node-identity')?.data;
  t.same(id.novaHost, { value: 'compute-01.example.org', source: 'nova.conf' }, "Nova's host from the tree's nova.conf");
  t.same(id.computeNodeUuid, { value: UUID, source: 'compute_id' }, "the compute node UUID from the tree's compute_id");
  t.same(id.providerName, { value: realProvider, source: 'libvirt' });
  t.match(id.libvirtd, { pid: FAKE_LIBVIRTD_PID, name: 'libvirtd', placement: 'container' }, "libvirtd found in the tree's /proc, in a container");
  t.same(id.containerPaths.map((p: any) => p.path), LIBVIRT_CONTAINER_PATHS, 'every configured libvirt container path is reported');
  for (const p of id.containerPaths) {
    t.match(p, { reachable: true, via: 'libvirt-container', resolved: path.join(host, 'proc', String(FAKE_LIBVIRTD_PID), 'root', p.path) }, p.path);
  }
});

t.test('hostRoot = a tree with a garbled compute_id and no libvirtd: typed errors, no crash', async (t) => {
  const host = path.join(work, 'broken');
  mkdirSync(path.join(host, 'var/lib/nova'), { recursive: true });
  mkdirSync(path.join(host, 'proc'), { recursive: true });
  writeFileSync(path.join(host, 'var/lib/nova/compute_id'), 'this is not a uuid\n');
  const { report } = await check(host, ['--set', 'emulation.enabled=false']);
  const s = section(report, 'node-identity');
  t.equal(s.ok, false, 'a garbled compute_id fails the section');
  t.match(s.data.computeNodeUuid, { value: null, error: /compute_id does not hold a UUID/ });
  t.same(s.data.novaHost, { value: realFqdn, source: 'hostname --fqdn' }, 'no nova.conf in the tree: hostname --fqdn');
  t.equal(s.data.libvirtd, null);
  t.same(s.data.containerPaths.map((p: any) => p.path), LIBVIRT_CONTAINER_PATHS, 'every configured libvirt container path is reported');
  for (const p of s.data.containerPaths) t.match(p, { reachable: false, reason: 'LIBVIRTD_NOT_VISIBLE' }, p.path);
  t.match(report.verdict.combinations[0].reasons.map((r: any) => r.code), ['SWTPM_USER_MISSING'], "the tree has no passwd, so the swtpm user is missing — / was not consulted");
});

t.test('hostRoot = /: the same binary on the host itself', async (t) => {
  // Other tests may restart the shared libvirtd meanwhile: its pid before or after the run counts.
  const before = libvirtdPids();
  const { report, stderr } = await check('/', ['--set', 'emulation.enabled=false']);
  const pids = [...before, ...libvirtdPids()];
  t.ok(report, `a JSON report (stderr: ${stderr.slice(-2000)})`);
  t.equal(report.probes.find((p: any) => p.probe === 'libvirt')?.ok, true);
  const id = section(report, 'node-identity').data;
  t.equal(id.providerName.value, realProvider);
  const conf = existsSync('/etc/nova/nova.conf');
  if (!conf) t.same(id.novaHost, { value: realFqdn, source: 'hostname --fqdn' });
  const computeId = existsSync('/var/lib/nova/compute_id');
  t.equal(id.computeNodeUuid.value === null, !computeId, 'compute_id read from / exactly when it exists there');
  t.ok(pids.includes(id.libvirtd.pid), `the real libvirtd (${id.libvirtd.pid}; pgrep: ${pids.join(',')})`);
  t.equal(id.libvirtd.placement, 'host');
  const host_ = report.probes.find((p: any) => p.probe === 'host');
  t.equal(host_?.ok, true);
  // The host's real swtpm principal (tss on Debian) is found in the real /etc/passwd.
  t.notMatch(JSON.stringify(report.verdict), /SWTPM_USER_MISSING/);
});
