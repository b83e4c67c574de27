import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { libvirtViewResolver, locateLibvirtd, pickLibvirtDaemon, placementFromMountinfoText, resolveLibvirtPath } from '../../src/host/libvirtd-location.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { requireCommands } from '../harness/components.js';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DAEMONS = ['libvirtd', 'virtqemud'];
const work = mkdtempSync(path.join(os.tmpdir(), 'vtpm-cpaths-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/**
 * A host root as a pod sees it at /host: `proc/<pid>/{comm,cmdline}` and `proc/<pid>/root` for init and
 * the daemons. The kernel makes `root` a magic link to the process's root; a symlink to a
 * directory behaves the same for stat and path lookup.
 */
function hostTree(name: string, procs: Array<{ pid: number; comm: string; root: 'host' | string }>): string {
  const host = path.join(work, name, 'host');
  for (const p of procs) {
    const dir = path.join(host, 'proc', String(p.pid));
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'comm'), `${p.comm}\n`);
    writeFileSync(path.join(dir, 'cmdline'), `/usr/sbin/${p.comm}\0`);
    symlinkSync(p.root === 'host' ? host : p.root, path.join(dir, 'root'));
  }
  mkdirSync(path.join(host, 'proc', 'sys'), { recursive: true }); // non-numeric entries are skipped
  return host;
}

function containerFs(name: string, dirs: string[]): string {
  const fs = path.join(work, name, 'libvirt-container');
  for (const d of dirs) mkdirSync(path.join(fs, d), { recursive: true });
  return fs;
}

t.test('libvirtd in a container: its private paths are read through /proc/<pid>/root', async (t) => {
  const cfs = containerFs('c1', ['var/log/swtpm/libvirt/qemu', 'etc/libvirt/secrets']);
  writeFileSync(path.join(cfs, 'var/log/swtpm/libvirt/qemu/instance-0000002a-swtpm.log'), 'swtpm log\n');
  const host = hostTree('c1', [
    { pid: 1, comm: 'systemd', root: 'host' },
    { pid: 77, comm: 'bash', root: 'host' },
    { pid: 4242, comm: 'libvirtd', root: cfs },
  ]);
  mkdirSync(path.join(host, 'var/log/swtpm'), { recursive: true }); // a stale host dir must not win
  const hostPath = hostPathResolver(host);
  const daemon = await locateLibvirtd({ hostPath, daemonNames: DAEMONS });
  t.match(daemon, { pid: 4242, name: 'libvirtd', placement: 'container' });
  const logs = await resolveLibvirtPath('/var/log/swtpm', daemon, hostPath);
  t.same(logs, { path: '/var/log/swtpm', pid: 4242, reachable: true, resolved: path.join(host, 'proc/4242/root/var/log/swtpm'), via: 'libvirt-container' });
  t.match(await resolveLibvirtPath('/etc/libvirt/secrets', daemon, hostPath), { reachable: true, via: 'libvirt-container' });
  t.match(await resolveLibvirtPath('/var/lib/swtpm-localca', daemon, hostPath), {
    reachable: false,
    resolved: null,
    reason: 'PATH_MISSING',
    detail: /swtpm-localca does not exist/,
  });
});

t.test('libvirtd on the host (systemd deployments): the same paths are plain host paths', async (t) => {
  const host = hostTree('h1', [
    { pid: 1, comm: 'systemd', root: 'host' },
    { pid: 900, comm: 'virtqemud', root: 'host' },
  ]);
  mkdirSync(path.join(host, 'etc/libvirt/secrets'), { recursive: true });
  const hostPath = hostPathResolver(host);
  const daemon = await locateLibvirtd({ hostPath, daemonNames: DAEMONS });
  t.match(daemon, { pid: 900, name: 'virtqemud', placement: 'host' });
  t.same(await resolveLibvirtPath('/etc/libvirt/secrets', daemon, hostPath), {
    path: '/etc/libvirt/secrets',
    pid: 900,
    reachable: true,
    resolved: path.join(host, 'etc/libvirt/secrets'),
    via: 'host',
  });
});

t.test('libvirtViewResolver: the container\'s path when libvirtd runs in one, else the host\'s', async (t) => {
  const cfs = containerFs('view', ['etc']);
  writeFileSync(path.join(cfs, 'etc/passwd'), 'swtpm:x:998:998::/var/lib/swtpm:/usr/sbin/nologin\n');
  const inContainer = hostTree('view-c', [
    { pid: 1, comm: 'systemd', root: 'host' },
    { pid: 610, comm: 'libvirtd', root: cfs },
  ]);
  t.equal((await libvirtViewResolver(hostPathResolver(inContainer)))('/etc/passwd'), path.join(inContainer, 'proc/610/root/etc/passwd'));
  const onHost = hostTree('view-h', [
    { pid: 1, comm: 'systemd', root: 'host' },
    { pid: 611, comm: 'virtqemud', root: 'host' },
  ]);
  t.equal((await libvirtViewResolver(hostPathResolver(onHost)))('/etc/passwd'), path.join(onHost, 'etc/passwd'));
  const none = hostTree('view-n', [{ pid: 1, comm: 'systemd', root: 'host' }]);
  t.equal((await libvirtViewResolver(hostPathResolver(none)))('/etc/passwd'), path.join(none, 'etc/passwd'));
});

t.test('two daemons: the oldest (lowest pid) owns the sockets', async (t) => {
  const a = containerFs('two-a', []);
  const b = containerFs('two-b', []);
  const host = hostTree('two', [
    { pid: 1, comm: 'systemd', root: 'host' },
    { pid: 5000, comm: 'libvirtd', root: b },
    { pid: 300, comm: 'libvirtd', root: a },
  ]);
  t.match(await locateLibvirtd({ hostPath: hostPathResolver(host), daemonNames: DAEMONS }), { pid: 300 });
});

t.test('no libvirtd visible: every path says why (host PID not shared, or not running)', async (t) => {
  const host = hostTree('none', [{ pid: 1, comm: 'tini', root: 'host' }]);
  const hostPath = hostPathResolver(host);
  const daemon = await locateLibvirtd({ hostPath, daemonNames: DAEMONS });
  t.equal(daemon, null);
  t.match(await resolveLibvirtPath('/var/log/swtpm', daemon, hostPath), {
    reachable: false,
    via: null,
    reason: 'LIBVIRTD_NOT_VISIBLE',
    detail: /hostPID: true/,
  });
  t.equal(await locateLibvirtd({ hostPath: hostPathResolver(path.join(work, 'no-such-root')), daemonNames: DAEMONS }), null, 'no /proc at all');
});

t.test("the machine's real libvirtd, through the real /proc", async (t) => {
  requireCommands('pgrep');
  const pids = execFileSync('pgrep', ['-x', 'libvirtd'], { encoding: 'utf8' }).trim().split('\n').map(Number);
  const daemon = await locateLibvirtd({ hostPath: hostPathResolver('/'), daemonNames: ['libvirtd'] });
  t.ok(daemon && pids.includes(daemon.pid), `found libvirtd ${daemon?.pid} among ${pids.join(',')}`);
  t.equal(daemon?.placement, 'host', 'libvirtd runs on this host, not in a container');
});

t.test('root without CAP_SYS_PTRACE (a container with capabilities dropped): libvirtd\'s root is denied, and said so', async (t) => {
  requireCommands('pgrep', 'setpriv');
  // A real process with an empty capability set looking at the real libvirtd (root, full
  // capabilities): the kernel refuses /proc/<pid>/root, as in a pod without SYS_PTRACE.
  const script = path.join(ROOT, '.cache', `cpaths-nocaps-${process.pid}.mts`);
  mkdirSync(path.dirname(script), { recursive: true });
  writeFileSync(
    script,
    [
      `import { locateLibvirtd, resolveLibvirtPath } from '${path.join(ROOT, 'src/host/libvirtd-location.ts')}';`,
      `import { hostPathResolver } from '${path.join(ROOT, 'src/util/hostpath.ts')}';`,
      `const hostPath = hostPathResolver('/');`,
      `const daemon = await locateLibvirtd({ hostPath, daemonNames: ['libvirtd'] });`,
      `const missing = await resolveLibvirtPath('/nonexistent-vtpm-agent-test-dir', daemon, hostPath);`,
      `const present = await resolveLibvirtPath('/etc', daemon, hostPath);`,
      `console.log(JSON.stringify({ daemon, missing, present }));`,
    ].join('\n'),
  );
  t.teardown(() => rmSync(script, { force: true }));
  const { stdout } = await execFileAsync('setpriv', ['--bounding-set=-all', '--inh-caps=-all', '--', process.execPath, '--import', 'tsx', script], {
    cwd: ROOT,
    // Not tap's NODE_OPTIONS: its hooks are for the test process only.
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    timeout: 60_000,
  });
  const out = JSON.parse(stdout);
  t.equal(out.daemon.placement, 'unknown');
  t.equal(out.daemon.reason, 'PROC_ROOT_DENIED');
  t.match(out.daemon.detail, /EACCES.*CAP_SYS_PTRACE/);
  t.match(out.missing, { reachable: false, resolved: null, reason: 'PROC_ROOT_DENIED' });
  // Where libvirtd runs is unknown, but a path present on the host is still read there, with the reason kept.
  t.match(out.present, { reachable: true, via: 'host', resolved: '/etc', detail: /read from the host; .*EACCES/ });
});

t.test('libvirt-view resolver: container paths through /proc/<pid>/root, host paths otherwise', async (t) => {
  const { libvirtViewResolver } = await import('../../src/host/libvirtd-location.js');
  const cfs = containerFs('v1', ['etc']);
  writeFileSync(path.join(cfs, 'etc/passwd'), 'swtpm:x:107:113::/var/lib/swtpm:/usr/sbin/nologin\n');
  const inPod = hostTree('v1', [
    { pid: 1, comm: 'systemd', root: 'host' },
    { pid: 4243, comm: 'libvirtd', root: cfs },
  ]);
  const view = await libvirtViewResolver(hostPathResolver(inPod), DAEMONS);
  t.equal(view('/etc/passwd'), path.join(inPod, 'proc/4243/root/etc/passwd'));
  t.match(readFileSync(view('/etc/passwd'), 'utf8'), /^swtpm:x:107/, 'the swtpm user of the libvirt container');
  const onHost = hostTree('v2', [{ pid: 1, comm: 'systemd', root: 'host' }, { pid: 901, comm: 'libvirtd', root: 'host' }]);
  t.equal((await libvirtViewResolver(hostPathResolver(onHost), DAEMONS))('/etc/passwd'), path.join(onHost, 'etc/passwd'));
  const none = hostTree('v3', [{ pid: 1, comm: 'systemd', root: 'host' }]);
  t.equal((await libvirtViewResolver(hostPathResolver(none), DAEMONS))('/var/log/swtpm'), path.join(none, 'var/log/swtpm'), 'no libvirtd visible: host path');
});

t.test('placement from mountinfo: overlay or a bind of a subdirectory at / is a container', async (t) => {
  const host = '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n23 22 0:21 / /proc rw,relatime - proc proc rw\n';
  const container =
    '1200 1100 0:120 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/l1,upperdir=/u,workdir=/w\n1201 1200 0:121 / /proc rw - proc proc rw\n';
  const bind = '300 200 254:0 /var/lib/machines/x / rw,relatime - ext4 /dev/vda rw\n';
  t.equal(placementFromMountinfoText(host), 'host');
  t.equal(placementFromMountinfoText(container), 'container');
  t.equal(placementFromMountinfoText(bind), 'container');
  t.equal(placementFromMountinfoText(''), 'unknown');
  t.equal(placementFromMountinfoText(`${host}400 22 0:99 / / rw - overlay overlay rw\n`), 'container', 'the last mount on / is the visible one');
});

t.test('the one rule for which daemon is libvirt: virtqemud before libvirtd, then the oldest', async (t) => {
  const p = (pid: number, comm: string) => ({ pid, comm });
  t.same(pickLibvirtDaemon([p(1, 'systemd'), p(700, 'libvirtd'), p(900, 'virtqemud')]), p(900, 'virtqemud'), 'modular libvirt: the QEMU driver daemon');
  t.same(pickLibvirtDaemon([p(5000, 'libvirtd'), p(300, 'libvirtd')]), p(300, 'libvirtd'), 'a stale duplicate: the oldest');
  t.same(pickLibvirtDaemon([p(800, 'virtqemud'), p(400, 'virtqemud'), p(100, 'libvirtd')]), p(400, 'virtqemud'));
  t.equal(pickLibvirtDaemon([p(1, 'systemd'), p(2, 'libvirt-dbus')]), null);
  t.equal(pickLibvirtDaemon([p(700, 'libvirtd')], ['virtqemud']), null, 'only the configured names count');
});
