import t from 'tap';
import type { LocalCaConfig } from '../../src/host/swtpm-localca.js';
import { evaluatePrincipal } from '../../src/health/checks/principal.js';
import { resolvePrincipal } from '../../src/host/swtpm-principal.js';
import { parseLibvirtConf } from '../../src/libvirt/qemu-conf.js';
import { parseGroup, parsePasswd, type Accounts } from '../../src/host/accounts.js';
import { novaSettings } from '../../src/host/nova-conf.js';
import { parseIni } from '../../src/util/ini.js';
import { evaluateAppArmor, evaluateSelinux } from '../../src/health/checks/mac.js';
import { evaluateCrypto } from '../../src/health/checks/crypto.js';
import { evaluateNova } from '../../src/health/checks/nova.js';
import { evaluateSecrets } from '../../src/health/checks/secrets.js';
import { evaluateVersions } from '../../src/health/checks/versions.js';
import { evaluateContainer } from '../../src/health/checks/container.js';
import { parseMountinfo } from '../../src/host/mountinfo.js';
import { parseRestoreconDryRun } from '../../src/health/parse/mac.js';
import { reasons } from '../../src/health/reasons.js';
import type { GuestsView, HealthGuest } from '../../src/health/guests.js';
import type { CheckResult } from '../../src/health/types.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const accounts: Accounts = {
  users: parsePasswd('root:x:0:0::/root:/bin/sh\ntss:x:103:110::/:/bin/false\nswtpm:x:120:120::/:/bin/false\nlibvirt-qemu:x:64055:108::/:/bin/false\n'),
  groups: parseGroup('root:x:0:\ntss:x:110:\nswtpm:x:120:\n'),
};
const reasonsOf = (c: CheckResult) => c.findings.map((f) => f.reason);
const nova = (text: string) => novaSettings(parseIni(text), ['/etc/nova/nova.conf'], []);
const res = (qemuConf: string | null, acc = accounts) => ({ ...resolvePrincipal(qemuConf === null ? null : parseLibvirtConf(qemuConf), acc), qemuConfError: null, qemuConfMalformedLines: 0 });

t.test('every reason code names a check and a remedy', async (t) => {
  for (const [code, r] of Object.entries(reasons)) {
    t.match(code, /^VTPM_HEALTH_[A-Z0-9_]+$/);
    t.ok(r.remedy.length > 20, code);
  }
});

t.test('C3 principal: default tss, root fallback, qemu.conf vs nova.conf by name and id', async (t) => {
  const def = res(null);
  t.same([def.principal?.user, def.principal?.uid, def.principal?.userSource], ['tss', 103, 'default']);
  const fallback = res(null, { users: accounts.users.filter((u) => u.name !== 'tss'), groups: accounts.groups.filter((g) => g.name !== 'tss') });
  t.same([fallback.principal?.user, fallback.principal?.userSource], ['root', 'root-fallback']);
  t.same(reasonsOf(evaluatePrincipal(fallback, accounts, null, '/etc/libvirt/qemu.conf')), ['VTPM_HEALTH_PRINCIPAL_ROOT_FALLBACK']);

  const ok = evaluatePrincipal(def, accounts, nova('[libvirt]\nswtpm_enabled = true\n'), '/q');
  t.equal(ok.status, 'pass', 'Nova default tss = libvirt default tss');

  const mismatch = evaluatePrincipal(res('swtpm_user = "swtpm"\nswtpm_group = "swtpm"\n'), accounts, nova('[libvirt]\nswtpm_enabled = true\nswtpm_user = tss\nswtpm_group = tss\n'), '/q');
  t.equal(mismatch.status, 'fail');
  t.same(reasonsOf(mismatch), ['VTPM_HEALTH_PRINCIPAL_MISMATCH', 'VTPM_HEALTH_PRINCIPAL_MISMATCH']);
  t.match(mismatch.findings[0]!.message, /user swtpm \(uid 120\).*swtpm_user is tss \(uid 103\)/);

  const latent = evaluatePrincipal(res('swtpm_user = "swtpm"\nswtpm_group = "swtpm"\n'), accounts, nova('[libvirt]\nswtpm_enabled = false\n'), '/q');
  t.equal(latent.status, 'warn', 'vTPM off in Nova: a latent mismatch only warns');

  const numeric = evaluatePrincipal(res('swtpm_user = "+103"\nswtpm_group = "+110"\n'), accounts, nova('[libvirt]\nswtpm_enabled = true\n'), '/q');
  t.equal(numeric.status, 'pass', 'same UID/GID under another spelling');

  const unknown = evaluatePrincipal(res('swtpm_user = "nobody-here"\n'), accounts, nova('[libvirt]\nswtpm_enabled = true\nswtpm_user = ghost\n'), '/q');
  t.same(reasonsOf(unknown).sort(), ['VTPM_HEALTH_NOVA_PRINCIPAL_UNKNOWN', 'VTPM_HEALTH_PRINCIPAL_UNKNOWN']);
  t.equal(unknown.status, 'fail');
});

t.test('C7/C8 MAC evaluation: not applicable without, findings with', async (t) => {
  t.equal(evaluateAppArmor(false, null, []).status, 'not-applicable');
  t.equal(evaluateSelinux(null, []).status, 'not-applicable');
  const profiles = readFileSync(path.join(import.meta.dirname, '../fixtures/health/apparmor-profiles.txt'), 'utf8');
  const aa = evaluateAppArmor(true, profiles, [{ mac: 'apparmor', at: 1, line: 'apparmor="DENIED" comm="swtpm"' }]);
  t.same(reasonsOf(aa), ['VTPM_HEALTH_APPARMOR_PROFILE_COMPLAIN', 'VTPM_HEALTH_APPARMOR_DENIED']);
  t.equal(aa.status, 'fail');
  t.same(reasonsOf(evaluateAppArmor(true, '/usr/sbin/libvirtd (enforce)\n', [])), ['VTPM_HEALTH_APPARMOR_PROFILE_MISSING']);
  t.equal(evaluateAppArmor(true, 'swtpm (enforce)\n', []).status, 'pass');
  const relabels = parseRestoreconDryRun('Would relabel /usr/bin/swtpm from system_u:object_r:bin_t:s0 to system_u:object_r:swtpm_exec_t:s0\nWould relabel /var/lib/libvirt/swtpm from system_u:object_r:var_lib_t:s0 to system_u:object_r:virt_var_lib_t:s0\n');
  const se = evaluateSelinux({ enforce: '1', labels: { '/usr/bin/swtpm': 'bin_t' }, modules: ['swtpm'], relabels }, [{ mac: 'selinux', at: 1, line: 'avc: denied' }]);
  t.same(reasonsOf(se), ['VTPM_HEALTH_SELINUX_LABEL', 'VTPM_HEALTH_SELINUX_LABEL', 'VTPM_HEALTH_SELINUX_MODULES_MISSING', 'VTPM_HEALTH_SELINUX_DENIED']);
  t.same(se.findings.map((f) => f.subject).slice(0, 2), ['/usr/bin/swtpm', '/var/lib/libvirt/swtpm'], 'the binary is reported once');
  t.equal(evaluateSelinux({ enforce: '1', labels: { '/usr/bin/swtpm': 'swtpm_exec_t' }, modules: ['swtpm', 'swtpm_libvirt', 'swtpm_svirt'], relabels: [] }, []).status, 'pass');
  t.equal(evaluateSelinux({ enforce: '0', labels: {}, modules: null, relabels: null }, []).status, 'warn', 'permissive');
  const debianProfile = readFileSync(path.join(import.meta.dirname, '../fixtures/health/usr.bin.swtpm'), 'utf8');
  const relocated = evaluateAppArmor(true, 'swtpm (enforce)\n', [], { file: '/etc/apparmor.d/usr.bin.swtpm', text: debianProfile, paths: ['/srv/tpm-state', '/var/log/swtpm/libvirt/qemu', '/run/libvirt/qemu/swtpm'] });
  t.same(relocated.findings.map((f) => [f.reason, f.subject]), [['VTPM_HEALTH_APPARMOR_PROFILE_PATHS', '/srv/tpm-state']]);
  t.equal(evaluateAppArmor(true, 'swtpm (enforce)\n', [], { file: 'p', text: debianProfile, paths: ['/var/lib/libvirt/swtpm', '/var/log/swtpm/libvirt/qemu', '/run/libvirt/qemu/swtpm'] }).status, 'pass');
});

t.test('C9 crypto', async (t) => {
  t.equal(evaluateCrypto({ fipsEnabled: null, cryptoPolicy: null, swtpmVersion: '0.7.1' }).status, 'pass');
  t.equal(evaluateCrypto({ fipsEnabled: true, cryptoPolicy: 'FIPS', swtpmVersion: '0.7.1' }).status, 'fail');
  t.equal(evaluateCrypto({ fipsEnabled: true, cryptoPolicy: null, swtpmVersion: '0.10.1' }).status, 'warn');
  t.equal(evaluateCrypto({ fipsEnabled: false, cryptoPolicy: 'DEFAULT:SHA1', swtpmVersion: null }).status, 'pass');
});

const guest = (over: Partial<HealthGuest>): HealthGuest => ({ name: 'instance-00000001', uuid: '11111111-2222-3333-4444-555555555555', tpmVersion: '2.0', encryptionSecret: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', running: true, nova: true, secretMode: 'user', secretPresent: null, ...over });
const view = (guests: HealthGuest[], secrets: GuestsView['secrets'] = []): GuestsView => ({ guests, secrets, collectedAt: 0 });

t.test('C11 Nova config', async (t) => {
  t.equal(evaluateNova(null, null).status, 'not-applicable');
  const off = evaluateNova(nova('[libvirt]\nswtpm_enabled = False\n'), view([guest({})]));
  t.same(reasonsOf(off), ['VTPM_HEALTH_NOVA_VTPM_DISABLED_WITH_GUESTS']);
  t.same(reasonsOf(evaluateNova(nova('[libvirt]\nswtpm_enabled = true\nvirt_type = lxc\n'), view([]))), ['VTPM_HEALTH_NOVA_VIRT_TYPE']);
  t.same(reasonsOf(evaluateNova(nova('[libvirt]\nswtpm_enabled = true\n'), view([]), false)), ['VTPM_HEALTH_NOVA_VTPM_UNSUPPORTED']);
  t.equal(evaluateNova(nova('[libvirt]\nswtpm_enabled = true\n'), view([]), true).status, 'pass');
  const resume = evaluateNova(nova('[DEFAULT]\nresume_guests_state_on_host_boot = true\n[libvirt]\nswtpm_enabled = true\n'), view([guest({})]));
  t.same(reasonsOf(resume), ['VTPM_HEALTH_NOVA_USER_MODE_NO_AUTORESTART']);
  t.equal(evaluateNova(nova('[DEFAULT]\nresume_guests_state_on_host_boot = true\n[libvirt]\nswtpm_enabled = true\nsupported_tpm_secret_security = user,host\n'), view([guest({})])).status, 'pass');
  t.same(reasonsOf(evaluateNova(nova('[libvirt]\nswtpm_enabled = sometimes\n'), view([]))), ['VTPM_HEALTH_NOVA_CONF_INVALID']);
});

t.test('C12 secrets', async (t) => {
  t.equal(evaluateSecrets(null).status, 'unknown', 'no inventory: unknown, not "not applicable"');
  t.equal(evaluateSecrets(view([guest({})])).status, 'pass', 'user mode: Nova removed the secret after start, as designed');
  t.same(reasonsOf(evaluateSecrets(view([guest({ secretMode: 'host' })]))), ['VTPM_HEALTH_SECRET_MISSING']);
  t.equal(evaluateSecrets(view([guest({ nova: false, running: false })])).status, 'fail');
  t.same(reasonsOf(evaluateSecrets(view([guest({ encryptionSecret: null })]))), ['VTPM_HEALTH_SECRET_UNENCRYPTED_NOVA']);
  const orphan = evaluateSecrets(view([guest({})], [{ uuid: '99999999-2222-3333-4444-555555555555', usageType: 'vtpm', usageName: '00000000-0000-0000-0000-000000000000' }, { uuid: 'x', usageType: 'volume', usageName: null }]));
  t.same(reasonsOf(orphan), ['VTPM_HEALTH_SECRET_ORPHANED']);
  t.same(reasonsOf(evaluateSecrets(view([guest({})], null))), ['VTPM_HEALTH_SECRETS_UNKNOWN']);
});

t.test('C13 versions', async (t) => {
  t.equal(evaluateVersions({ libvirt: '9.0.0', qemu: '7.2.22', swtpm: '0.7.1', libtpms: '0.9.2', openssl: '3.0.19' }).status, 'pass');
  t.same(reasonsOf(evaluateVersions({ libvirt: '8.0.0', qemu: '6.2.0', swtpm: '0.6.3', libtpms: null, openssl: null })).sort(), ['VTPM_HEALTH_LIBVIRT_NO_KEEP_TPM', 'VTPM_HEALTH_VERSION_UNKNOWN']);
});

t.test('C14 container: host libvirt n/a; pod without mounts and ptrace', async (t) => {
  const fx = (n: string) => readFileSync(path.join(import.meta.dirname, '../fixtures/health', n), 'utf8');
  const dirs = ['/var/lib/libvirt/swtpm', '/var/log/swtpm/libvirt/qemu', '/etc/libvirt/secrets', '/var/lib/swtpm-localca'];
  t.equal(evaluateContainer({ daemon: { pid: 1, comm: 'libvirtd' }, containerised: false, capEff: null, mounts: parseMountinfo(fx('captured-mountinfo-debian12-host.txt')) }, '9.0.0', dirs).status, 'not-applicable');
  t.same(reasonsOf(evaluateContainer({ daemon: null, containerised: null, capEff: null, mounts: null }, null, dirs)), ['VTPM_HEALTH_LIBVIRT_DAEMON_NOT_FOUND']);
  const pod = evaluateContainer({ daemon: { pid: 7, comm: 'libvirtd' }, containerised: true, capEff: 0xa80425fbn, mounts: parseMountinfo(fx('mountinfo-libvirt-container.txt')) }, '8.0.0', dirs);
  t.same(reasonsOf(pod), ['VTPM_HEALTH_CONTAINER_NO_PTRACE', 'VTPM_HEALTH_CONTAINER_DIR_NOT_HOST_MOUNT', 'VTPM_HEALTH_CONTAINER_DIR_NOT_HOST_MOUNT', 'VTPM_HEALTH_CONTAINER_DIR_NOT_HOST_MOUNT']);
  t.same(pod.findings.slice(1).map((f) => f.subject), ['/var/log/swtpm/libvirt/qemu', '/etc/libvirt/secrets', '/var/lib/swtpm-localca']);
  const newer = evaluateContainer({ daemon: { pid: 7, comm: 'libvirtd' }, containerised: true, capEff: 0xa80425fbn, mounts: parseMountinfo(fx('mountinfo-libvirt-container.txt')) }, '10.0.0', dirs);
  t.notOk(reasonsOf(newer).includes('VTPM_HEALTH_CONTAINER_NO_PTRACE'), 'libvirt >= 8.1 uses a locked pidfile');
  // Could not look: unknown, never not-applicable or pass.
  const blind = evaluateContainer({ daemon: { pid: 7, comm: 'libvirtd' }, containerised: null, capEff: null, mounts: null }, '8.0.0', dirs);
  t.equal(blind.status, 'unknown', 'mount namespaces unreadable: unknown');
  t.same(reasonsOf(blind), ['VTPM_HEALTH_CONTAINER_UNREADABLE_BY_AGENT']);
  const halfBlind = evaluateContainer({ daemon: { pid: 7, comm: 'libvirtd' }, containerised: true, capEff: null, mounts: null }, '8.0.0', dirs);
  t.equal(halfBlind.status, 'unknown', 'containerised, but status and mountinfo unreadable: unknown, not pass');
  t.same(reasonsOf(halfBlind), ['VTPM_HEALTH_CONTAINER_UNREADABLE_BY_AGENT', 'VTPM_HEALTH_CONTAINER_UNREADABLE_BY_AGENT']);
});

t.test('C4 local CA: a config the agent cannot read is unknown (it says nothing of swtpm_setup); a missing one fails', async (t) => {
  const { checkLocalCa } = await import('../../src/health/checks/localca.js');
  const principal = { user: 'tss', group: 'tss', uid: 103, gid: 110, gids: [110], userSource: 'default' as const, groupSource: 'default' as const };
  const accounts = { users: [], groups: [] } as unknown as Parameters<typeof checkLocalCa>[0]['accounts'];
  const base: LocalCaConfig = { setupConf: '/etc/swtpm_setup.conf', setupError: null, createCertsTool: null, localcaConf: null, localcaError: null, localca: null };
  const run = (conf: Partial<LocalCaConfig>) => checkLocalCa({ conf: { ...base, ...conf }, principal, accounts, hostPath: (p) => p });
  const denied = await run({ setupError: 'EACCES' });
  t.equal(denied.status, 'unknown');
  t.same(reasonsOf(denied), ['VTPM_HEALTH_LOCALCA_UNREADABLE_BY_AGENT']);
  const missing = await run({ setupError: 'ENOENT' });
  t.equal(missing.status, 'fail');
  t.same(reasonsOf(missing), ['VTPM_HEALTH_SWTPM_SETUP_CONF_UNREADABLE']);
  const caDenied = await run({ createCertsTool: '/usr/bin/swtpm_localca', localcaConf: '/etc/swtpm-localca.conf', localcaError: 'EACCES' });
  t.equal(caDenied.status, 'unknown', 'swtpm-localca.conf unreadable by the agent: unknown');
});

t.test('C5 guest state: a path the agent cannot look at is unknown, never "missing" (a reset) or pass', async (t) => {
  const { checkGuestState } = await import('../../src/health/checks/guest-state.js');
  const { mkdtempSync, mkdirSync, symlinkSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const root = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guest-state-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const uuid = '0b0c0d0e-1111-4222-8333-444455556666';
  mkdirSync(path.join(root, 'state', uuid, 'tpm2'), { recursive: true });
  // A symlink loop: stat fails with ELOOP, as root cannot be denied otherwise.
  symlinkSync('tpm2-00.permall', path.join(root, 'state', uuid, 'tpm2', 'tpm2-00.permall'));
  const principal = { user: 'root', group: 'root', uid: 0, gid: 0, gids: [0], userSource: 'root-fallback' as const, groupSource: 'root-fallback' as const };
  const accounts = { users: [], groups: [] } as unknown as Parameters<typeof checkGuestState>[0]['accounts'];
  const guest = { name: 'instance-0000002a', uuid, tpmVersion: '2.0', encryptionSecret: null, running: true, nova: true, secretMode: 'none' as const, secretPresent: null };
  const r = await checkGuestState({ guests: [guest] as never, stateDir: '/state', principal, accounts, hostPath: (p) => path.join(root, p), minFreeBytes: 0, socketFeatures: null, swtpmLogDir: '/logs' });
  t.equal(r.status, 'unknown');
  t.same(reasonsOf(r), ['VTPM_HEALTH_STATE_UNREADABLE_BY_AGENT'], 'not VTPM_HEALTH_STATE_MISSING');
  t.match(r.findings[0]?.message, /tpm2-00\.permall \(ELOOP\)/);
});

t.test('C11 orphans: what the agent cannot read is unknown, not "no orphans"', async (t) => {
  const { checkOrphans } = await import('../../src/health/checks/orphans.js');
  const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const root = mkdtempSync(path.join(tmpdir(), 'vtpmtest-orphans-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(path.join(root, 'proc'));
  mkdirSync(path.join(root, 'run'));
  const input = { guests: [], stateDir: '/state', runDir: '/run', processes: [], hostPath: (p: string) => path.join(root, p) };
  writeFileSync(path.join(root, 'proc/locks'), '');
  const clean = await checkOrphans(input);
  t.equal(clean.status, 'pass', 'everything readable, nothing found: pass (a missing state dir is no orphan)');
  symlinkSync('state', path.join(root, 'state')); // ELOOP
  rmSync(path.join(root, 'proc/locks'));
  const blind = await checkOrphans(input);
  t.equal(blind.status, 'unknown');
  t.same(reasonsOf(blind), ['VTPM_HEALTH_ORPHANS_UNREADABLE_BY_AGENT', 'VTPM_HEALTH_ORPHANS_UNREADABLE_BY_AGENT']);
  t.match(blind.findings.map((f) => f.message).join('\n'), /\/proc\/locks \(ENOENT\)[^]*\/state \(ELOOP\)/);
});
