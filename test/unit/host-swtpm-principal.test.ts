import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { loadPrincipal, swtpmNames } from '../../src/host/swtpm-principal.js';
import { hostPathResolver } from '../../src/util/hostpath.js';

// A host root with its own /etc: libvirtd is not running in it, so its paths are the host's (under the root).
function hostRoot(t: { teardown(fn: () => void): void }, qemuConf: string | null): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vtpm-names-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, 'etc/libvirt'), { recursive: true });
  writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\ntss:x:103:110::/var/lib/tpm:/bin/false\nswtpm:x:200:200::/:/bin/false\n');
  writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\ntss:x:110:\nswtpm:x:200:\n');
  if (qemuConf !== null) writeFileSync(path.join(root, 'etc/libvirt/qemu.conf'), qemuConf);
  return root;
}

t.test('no qemu.conf settings: libvirt\'s default tss', async (t) => {
  const root = hostRoot(t, '# swtpm_user = "swtpm"\n');
  const config = configSchema.parse({ hostRoot: root });
  t.same(await swtpmNames(config, await loadPrincipal((config).health, hostPathResolver(root))), { user: 'tss', group: 'tss', source: 'libvirt-default', problem: null });
});

t.test('qemu.conf names the principal: the emulation check and the host probe follow it', async (t) => {
  const root = hostRoot(t, 'swtpm_user = "swtpm"\nswtpm_group = "swtpm"\n');
  const config = configSchema.parse({ hostRoot: root });
  t.same(await swtpmNames(config, await loadPrincipal((config).health, hostPathResolver(root))), { user: 'swtpm', group: 'swtpm', source: 'qemu.conf', problem: null });
});

t.test('qemu.conf names an account that does not exist: that name, so the verdict says it is missing; the other name stays', async (t) => {
  const root = hostRoot(t, 'swtpm_user = "nobody-here"\nswtpm_group = "swtpm"\n');
  const config = configSchema.parse({ hostRoot: root });
  const names = await swtpmNames(config, await loadPrincipal((config).health, hostPathResolver(root)));
  t.equal(names.user, 'nobody-here');
  t.equal(names.group, 'swtpm', 'the valid group is not replaced by the default');
  t.equal(names.source, 'qemu.conf');
});

t.test('configured names win over qemu.conf', async (t) => {
  const root = hostRoot(t, 'swtpm_user = "swtpm"\nswtpm_group = "swtpm"\n');
  const config = configSchema.parse({ hostRoot: root, swtpm: { user: 'tss', group: 'tss' } });
  t.same(await swtpmNames(config, await loadPrincipal((config).health, hostPathResolver(root))), { user: 'tss', group: 'tss', source: 'config', problem: null });
});

t.test('qemu.conf unreadable (Debian ships it 0600 root; an unprivileged agent gets EACCES): assumed, and said so', async (t) => {
  const root = hostRoot(t, null);
  // Tests run as root, which reads any mode: a directory in its place gives the read error instead.
  mkdirSync(path.join(root, 'etc/libvirt/qemu.conf'));
  const config = configSchema.parse({ hostRoot: root });
  const names = await swtpmNames(config, await loadPrincipal((config).health, hostPathResolver(root)));
  t.equal(names.source, 'assumed');
  t.same([names.user, names.group], ['tss', 'tss']);
  t.match(names.problem, /\/etc\/libvirt\/qemu\.conf cannot be read \(EISDIR\).*set swtpm\.user and swtpm\.group/);
});

t.test('unreadable passwd/group: the names are a guess and say so (never silently root)', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vtpm-principal-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, 'etc/libvirt'), { recursive: true });
  writeFileSync(path.join(root, 'etc/libvirt/qemu.conf'), '# defaults\n');
  const names = await swtpmNames(configSchema.parse({ hostRoot: root }), await loadPrincipal((configSchema.parse({ hostRoot: root })).health, hostPathResolver(root)));
  t.equal(names.source, 'assumed', 'no passwd/group: assumed, not libvirt-default');
  t.match(names.problem, /passwd\/group cannot be read \(.*ENOENT/);
});
