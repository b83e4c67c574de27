import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { checkBinaries, executableInRoot, type BinariesInput } from '../../src/health/checks/binaries.js';
import { hostPathResolver } from '../../src/util/hostpath.js';

/** A host root with a libvirt daemon (pid 4242) in its own mount namespace and root. */
function setup(t: { teardown(fn: () => void): void }) {
  const host = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-bin-'));
  t.teardown(() => rmSync(host, { recursive: true, force: true }));
  const marker = path.join(host, 'executed');
  const ctr = path.join(host, 'proc/4242/root');
  mkdirSync(path.join(host, 'proc/4242/ns'), { recursive: true });
  mkdirSync(path.join(host, 'proc/self/ns'), { recursive: true });
  symlinkSync('mnt:[4026532001]', path.join(host, 'proc/4242/ns/mnt'));
  symlinkSync('mnt:[4026531841]', path.join(host, 'proc/self/ns/mnt'));
  writeFileSync(path.join(host, 'proc/4242/environ'), 'LANG=C\0PATH=/usr/local/bin:/usr/bin\0');
  mkdirSync(path.join(ctr, 'usr/bin'), { recursive: true });
  mkdirSync(path.join(ctr, 'usr/lib/swtpm'), { recursive: true });
  // Any of these, if run, leaves a marker: the test proves nothing in the container is executed.
  const script = `#!/bin/sh\ntouch ${marker}\necho '{"type":"swtpm","features":["tpm-2.0","cmdarg-pwd-fd","cmdarg-pwdfile-fd"],"version":"0.7.1"}'\n`;
  for (const name of ['swtpm_setup', 'swtpm_ioctl', 'swtpm_localca', 'swtpm_cert', 'openssl']) {
    writeFileSync(path.join(ctr, 'usr/bin', name), script, { mode: 0o755 });
  }
  // An absolute symlink: must resolve inside the container's root, not the agent's.
  writeFileSync(path.join(ctr, 'usr/lib/swtpm/swtpm'), script, { mode: 0o755 });
  symlinkSync('/usr/lib/swtpm/swtpm', path.join(ctr, 'usr/bin/swtpm'));
  const input = (over: Partial<BinariesInput> = {}): BinariesInput => ({
    pathSource: 'libvirt-daemon',
    daemon: { pid: 4242, comm: 'virtqemud', argv: ['/usr/sbin/virtqemud'] },
    agentPath: '/nonexistent',
    hostPath: hostPathResolver(host),
    env: { PATH: '/usr/bin:/bin' },
    timeoutMs: 2000,
    checkBinaries: true,
    checkCapabilities: true,
    ...over,
  });
  return { host, ctr, marker, input };
}

t.test('libvirt in another container: binaries found by stat, never executed; capabilities not read', async (t) => {
  const s = setup(t);
  const out = await checkBinaries(s.input());
  t.notOk(existsSync(s.marker), 'no binary from the libvirt container was run');
  t.same(out.resolved.swtpm, '/usr/bin/swtpm');
  t.same(out.resolved.swtpm_setup, '/usr/bin/swtpm_setup');
  const bins = out.checks.find((c) => c.check === 'binaries')!;
  t.equal(bins.status, 'pass', JSON.stringify(bins.findings));
  const caps = out.checks.find((c) => c.check === 'capabilities')!;
  t.same(caps.findings.map((f) => f.reason), ['VTPM_HEALTH_CAPS_NOT_READ']);
  t.match(caps.findings[0]!.message, /capabilities not read \(binary in the libvirt container/);
  t.equal(caps.status, 'warn');
  t.same([out.socketFeatures, out.setupFeatures, out.swtpmVersion], [null, null, null]);
});

t.test('libvirt in another container: a binary without execute bits is reported as such', async (t) => {
  const s = setup(t);
  chmodSync(path.join(s.ctr, 'usr/bin/swtpm_ioctl'), 0o644);
  const out = await checkBinaries(s.input());
  const bins = out.checks.find((c) => c.check === 'binaries')!;
  t.same(bins.findings.map((f) => [f.reason, f.subject]), [['VTPM_HEALTH_BINARY_MISSING', 'swtpm_ioctl']]);
  t.match(bins.findings[0]!.message, /\/usr\/bin\/swtpm_ioctl exists but is not executable/);
  t.same(await executableInRoot(s.ctr, '/usr/bin/swtpm'), 'ok', 'absolute link followed inside the root');
  t.same(await executableInRoot(s.ctr, '/usr/bin/swtpm_ioctl'), 'not-executable');
  t.same(await executableInRoot(s.ctr, '/usr/bin/nope'), 'missing');
  t.notOk(existsSync(s.marker));
});

t.test("binaries on the agent's own PATH: capabilities are read by running them", async (t) => {
  const s = setup(t);
  const own = path.join(s.host, 'own-bin');
  mkdirSync(own);
  for (const name of ['swtpm', 'swtpm_setup', 'swtpm_ioctl', 'swtpm_localca', 'swtpm_cert', 'openssl']) {
    writeFileSync(path.join(own, name), `#!/bin/sh\necho '{"type":"swtpm","features":["tpm-2.0","cmdarg-pwd-fd","cmdarg-pwdfile-fd"],"version":"0.7.1"}'\n`, { mode: 0o755 });
  }
  const out = await checkBinaries(s.input({ pathSource: 'agent', daemon: null, agentPath: own, hostPath: hostPathResolver('/') }));
  t.same(out.socketFeatures, ['tpm-2.0', 'cmdarg-pwd-fd', 'cmdarg-pwdfile-fd']);
  t.equal(out.swtpmVersion, '0.7.1');
  t.equal(out.checks.find((c) => c.check === 'capabilities')!.status, 'pass');
});
