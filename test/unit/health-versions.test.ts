import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { evaluateVersions, parseDpkgStatus, readVersions } from '../../src/health/checks/versions.js';
import { upstreamVersion } from '../../src/host/versions.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { requireCommands } from '../harness/components.js';

// The machine's own package database is real dpkg output; dpkg-query is the reference reader.
const dpkgQuery = (pkg: string): string | null => {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f', '${Version} ${Status}', pkg], { encoding: 'utf8' });
    return out.split(' ')[3] === 'installed' ? out.split(' ')[0]! : null;
  } catch {
    return null;
  }
};

const base = (t: { teardown(fn: () => void): void }) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-versions-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

const input = (libvirtRoot: string) => ({
  virshPath: '/bin/false', // libvirt and QEMU come from the daemon; not under test here
  uri: 'qemu:///system',
  swtpmPath: null,
  env: process.env,
  timeoutMs: 5000,
  libvirtView: hostPathResolver(libvirtRoot),
});

t.test('parseDpkgStatus reads what dpkg-query reads from this machine\'s database', async (t) => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync('/var/lib/dpkg/status', 'utf8');
  const found = parseDpkgStatus(text, ['swtpm', 'libtpms0', 'libssl3', 'dpkg', 'no-such-package-here']);
  for (const pkg of ['swtpm', 'libtpms0', 'libssl3', 'dpkg']) t.equal(found.get(pkg) ?? null, dpkgQuery(pkg), pkg);
  t.notOk(found.has('no-such-package-here'));
});

t.test('removed packages (config-files) and garbage are not versions', async (t) => {
  const text = [
    'Package: swtpm\nStatus: deinstall ok config-files\nVersion: 0.7.1-1.3\n',
    'Package: libtpms0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.9.2-3.1+deb12u1\nDescription: x\n continued\n',
    'this is not a stanza',
    'Package: libssl3t64\nStatus: install ok installed\nVersion: 3.3.2-2\n',
    'Package: swtpm-tools\nStatus: hold ok installed\nVersion: 0.7.1-1.3\n',
  ].join('\n');
  const found = parseDpkgStatus(text, ['swtpm', 'swtpm-tools', 'libtpms0', 'libssl3t64']);
  t.same([...found.entries()].sort(), [['libssl3t64', '3.3.2-2'], ['libtpms0', '0.9.2-3.1+deb12u1'], ['swtpm-tools', '0.7.1-1.3']], 'a held package (apt-mark hold) is installed');
});

t.test('libvirtd in another root: swtpm, libtpms and OpenSSL from that root\'s packages, nothing executed there', async (t) => {
  const root = base(t);
  mkdirSync(path.join(root, 'var/lib/dpkg'), { recursive: true });
  copyFileSync('/var/lib/dpkg/status', path.join(root, 'var/lib/dpkg/status'));
  // A trap: were anything executed from that root, this would run.
  mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  writeFileSync(path.join(root, 'usr/bin/swtpm'), '#!/bin/sh\ntouch "$0.ran"\n', { mode: 0o755 });
  const r = await readVersions(input(root));
  t.equal(r.source, 'libvirt-packages');
  t.equal(r.versions.swtpm, upstreamVersion(dpkgQuery('swtpm') ?? ''));
  t.equal(r.versions.libtpms, upstreamVersion(dpkgQuery('libtpms0') ?? ''));
  t.equal(r.versions.openssl, upstreamVersion(dpkgQuery('libssl3') ?? ''));
  t.equal(r.versions.libvirt, null, 'the daemon did not answer (virsh is /bin/false)');
  const { existsSync } = await import('node:fs');
  t.notOk(existsSync(path.join(root, 'usr/bin/swtpm.ran')));
});

t.test('libvirtd in another root without a dpkg database: unknown, and the finding says why', async (t) => {
  const root = base(t);
  const r = await readVersions(input(root));
  t.equal(r.source, 'none');
  t.same([r.versions.swtpm, r.versions.libtpms, r.versions.openssl], [null, null, null]);
  const check = evaluateVersions(r.versions, r.source);
  const swtpm = check.findings.find((f) => f.reason === 'VTPM_HEALTH_VERSION_UNKNOWN' && f.subject === 'swtpm');
  t.match(swtpm?.message, /no dpkg database the agent can read/);
  t.equal(check.facts?.source, 'none');
});

t.test('libvirtd in the agent\'s own root: the swtpm binary it will run answers', async (t) => {
  requireCommands('swtpm'); // a missing component is a failure (npm test installs it), never a skip
  const swtpm = execFileSync('sh', ['-c', 'command -v swtpm'], { encoding: 'utf8' }).trim();
  const r = await readVersions({ ...input('/'), swtpmPath: swtpm });
  t.equal(r.source, 'agent');
  t.match(r.versions.swtpm, /^\d+\.\d+\.\d+$/);
  t.equal(r.versions.swtpm, upstreamVersion(dpkgQuery('swtpm') ?? ''), 'the same as the package says');
});
