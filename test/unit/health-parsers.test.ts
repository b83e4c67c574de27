import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseLibvirtConf, confString } from '../../src/libvirt/qemu-conf.js';
import { parseIni, iniGet, parseOsloBool, parseOsloList } from '../../src/util/ini.js';
import { parseGroup, parsePasswd, supplementaryGids } from '../../src/host/accounts.js';
import {
  CAP_SYS_PTRACE,
  devMajorMinor,
  hasCap,
  isSwtpmCommand,
  parseCapEff,
  parseEnvironPath,
  parseProcLocks,
  parseSwtpmArgs,
} from '../../src/health/parse/proc.js';
import { mountFor, parseMountinfo } from '../../src/host/mountinfo.js';
import {
  isSwtpmAppArmorDenial,
  isSwtpmAvc,
  isSwtpmSetroubleshoot,
  parseAppArmorDenial,
  parseAppArmorProfiles,
  parseSelinuxAvc,
  parseSelinuxConfigType,
  selinuxType,
  swtpmProfile,
} from '../../src/health/parse/mac.js';
import { classifyLogLine, vmidOf } from '../../src/health/parse/logline.js';
import { parseDaemonVersion, parseOpensslVersion, parseSwtpmVersion } from '../../src/health/checks/versions.js';
import { canAccess } from '../../src/health/access.js';

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, '../fixtures/health', name), 'utf8');

t.test('qemu.conf: strings, numbers, multi-line lists, comments; garbage never throws', async (t) => {
  const conf = parseLibvirtConf(['# swtpm_user = "nobody"', 'swtpm_user = "swtpm"  # inline', 'swtpm_group="swtpm"', 'dynamic_ownership = 1', 'namespaces = [', '  "mount",', ']', 'what is this', 'x = unquoted'].join('\n'));
  t.equal(confString(conf, 'swtpm_user'), 'swtpm');
  t.equal(confString(conf, 'swtpm_group'), 'swtpm');
  t.equal(conf.values.get('dynamic_ownership'), 1);
  t.same(conf.values.get('namespaces'), ['mount']);
  t.equal(conf.malformedLines, 2);
  const garbage = parseLibvirtConf('\u0000\u0001binary ]]] [[[ = = "\n"unterminated = "x');
  t.equal(garbage.values.size, 0);
  t.ok(garbage.malformedLines > 0);
});

t.test('nova.conf INI: sections, later files override, continuations, oslo bools and lists', async (t) => {
  const data = parseIni('[DEFAULT]\nresume_guests_state_on_host_boot = True\n[libvirt]\nswtpm_enabled = true\nswtpm_user = tss\n; comment\nsupported_tpm_secret_security = user,\n  host\n');
  parseIni('[libvirt]\nswtpm_user: swtpm\n', data);
  t.equal(iniGet(data, 'libvirt', 'swtpm_user'), 'swtpm');
  t.equal(parseOsloBool(iniGet(data, 'libvirt', 'swtpm_enabled')), true);
  t.equal(parseOsloBool(iniGet(data, 'DEFAULT', 'resume_guests_state_on_host_boot')), true);
  t.same(parseOsloList(iniGet(data, 'libvirt', 'supported_tpm_secret_security')), ['user', 'host']);
  t.equal(parseOsloBool('maybe'), null);
  const flat = parseIni(fixtureSetupConf);
  t.equal(iniGet(flat, '', 'create_certs_tool_config'), '/etc/swtpm-localca.conf');
  t.doesNotThrow(() => parseIni('\u0000[[[\n===\n[unterminated\n'));
});
const fixtureSetupConf = '# Program invoked for creating certificates\ncreate_certs_tool= /usr/bin/swtpm_localca\ncreate_certs_tool_config = /etc/swtpm-localca.conf\n';

t.test('passwd/group: supplementary groups from members', async (t) => {
  const users = parsePasswd('root:x:0:0:root:/root:/bin/bash\ntss:x:103:110::/var/lib/tpm:/bin/false\nbroken line\nbad:x:abc:1::/:/bin/sh\n');
  const groups = parseGroup('root:x:0:\ntss:x:110:\nkvm:x:104:tss,other\n');
  t.same(users.map((u) => u.name), ['root', 'tss']);
  t.same(supplementaryGids({ users, groups }, users[1]!).sort(), [104, 110]);
});

t.test('swtpm command lines as libvirt starts them (captured)', async (t) => {
  const argv = '/usr/bin/swtpm socket --ctrl type=unixio,path=/run/libvirt/qemu/swtpm/1-vtpmtest-health-prob-swtpm.sock,mode=0600 --tpmstate dir=/var/lib/libvirt/swtpm/ac79bf0a-de07-4b0f-84d6-540c7cd5db58/tpm2,mode=0600 --log file=/var/log/swtpm/libvirt/qemu/vtpmtest-health-probe0-swtpm.log --terminate --tpm2'.split(' ');
  t.ok(isSwtpmCommand(argv));
  const a = parseSwtpmArgs(argv);
  t.equal(a.stateDir, '/var/lib/libvirt/swtpm/ac79bf0a-de07-4b0f-84d6-540c7cd5db58/tpm2');
  t.equal(a.ctrlPath, '/run/libvirt/qemu/swtpm/1-vtpmtest-health-prob-swtpm.sock');
  t.equal(a.logFile, '/var/log/swtpm/libvirt/qemu/vtpmtest-health-probe0-swtpm.log');
  t.ok(a.tpm2);
  t.notOk(isSwtpmCommand(['/usr/bin/swtpm_setup', '--tpm2']));
  t.notOk(isSwtpmCommand([]));
  t.same(parseSwtpmArgs(['swtpm', 'socket', '--tpmstate=dir=/x']).stateDir, '/x');
});

t.test('/proc/locks (captured), dev encoding, CapEff, environ, mountinfo', async (t) => {
  const locks = parseProcLocks('1: POSIX  ADVISORY  WRITE 13193 fe:00:1523834 0 EOF\n2: POSIX  ADVISORY  WRITE 4024 fe:00:1507778 0 0\n3: -> POSIX  ADVISORY  WRITE 55 fe:00:1 0 EOF\ngarbage\n');
  t.equal(locks.length, 2);
  t.same(locks[0], { kind: 'POSIX', access: 'WRITE', pid: 13193, major: 0xfe, minor: 0, ino: 1523834 });
  t.same(devMajorMinor(0xfe00), { major: 254, minor: 0 });
  t.same(devMajorMinor(2049), { major: 8, minor: 1 });
  const caps = parseCapEff('Name:\tlibvirtd\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n');
  t.equal(caps, 0x1fffeffffffn);
  t.ok(hasCap(caps!, CAP_SYS_PTRACE));
  t.notOk(hasCap(0x1fffef7ffffn, CAP_SYS_PTRACE));
  t.equal(parseCapEff('nothing'), null);
  t.equal(parseEnvironPath('HOME=/root\0PATH=/usr/sbin:/usr/bin\0'), '/usr/sbin:/usr/bin');
  const host = parseMountinfo(fixture('captured-mountinfo-debian12-host.txt'));
  t.equal(mountFor(host, '/var/lib/libvirt/swtpm')?.mountPoint, '/');
  t.equal(mountFor(host, '/proc/locks')?.fsType, 'proc');
  const pod = parseMountinfo(fixture('mountinfo-libvirt-container.txt'));
  t.equal(mountFor(pod, '/var/lib/libvirt/swtpm')?.mountPoint, '/var/lib/libvirt');
  t.equal(mountFor(pod, '/var/log/swtpm/libvirt/qemu')?.mountPoint, '/');
  t.equal(mountFor(pod, '/etc/libvirt/secrets')?.mountPoint, '/');
  t.same(parseMountinfo('garbage\n\u0000'), []);
});

t.test('AppArmor: profiles file and denial lines (captured in reports)', async (t) => {
  const profiles = parseAppArmorProfiles(fixture('apparmor-profiles.txt'));
  t.same(swtpmProfile(profiles), { name: 'swtpm', mode: 'complain' });
  t.equal(swtpmProfile(parseAppArmorProfiles('/usr/sbin/libvirtd (enforce)\n')), null);
  const lines = fixture('apparmor-kern.log').split('\n');
  const denials = lines.map(parseAppArmorDenial);
  t.equal(denials.filter(Boolean).length, 3, 'STATUS records are not denials');
  const swtpm = denials.filter((d) => d && isSwtpmAppArmorDenial(d));
  t.equal(swtpm.length, 2);
  t.same(swtpm[0], { operation: 'open', profile: 'swtpm', name: '/etc/nsswitch.conf', comm: 'swtpm', requestedMask: 'r' });
  t.match(swtpm[1]?.profile, /^libvirt-/);
});

t.test('SELinux: AVCs, contexts, setroubleshoot, config', async (t) => {
  const lines = fixture('selinux-audit.log').split('\n');
  const avcs = lines.map(parseSelinuxAvc).filter((a) => a !== null);
  t.equal(avcs.length, 3);
  t.same(avcs[0]!.permissions, ['read']);
  t.equal(avcs[0]!.tclass, 'fifo_file');
  t.equal(avcs[0]!.permissive, false);
  t.same(avcs.map(isSwtpmAvc), [true, true, false]);
  t.equal(selinuxType('system_u:object_r:swtpm_exec_t:s0'), 'swtpm_exec_t');
  t.equal(selinuxType('?'), null);
  t.ok(isSwtpmSetroubleshoot(lines[4]!));
  t.equal(parseSelinuxConfigType('SELINUX=enforcing\nSELINUXTYPE=targeted\n'), 'targeted');
});

t.test('log lines: the captured reset-and-lock swtpm log and QEMU log classify', async (t) => {
  const swtpm = fixture('captured-swtpm0.7.1-reset-and-lock.log').split('\n');
  const kinds = swtpm.map((l) => classifyLogLine(l)?.kind).filter(Boolean);
  t.equal(kinds.filter((k) => k === 'manufacture_start').length, 2);
  t.equal(kinds.filter((k) => k === 'manufacture_ok').length, 2);
  t.ok(kinds.includes('lock_held'));
  t.ok(kinds.includes('libtpms_init_failed'));
  t.same(vmidOf(swtpm.find((l) => l.includes('--vmid'))!), { name: 'vtpmtest-health-probe0', uuid: 'ac79bf0a-de07-4b0f-84d6-540c7cd5db58' });
  const qemu = fixture('captured-qemu7.2-cmd-init-lock-held.log').split('\n');
  t.same(qemu.map((l) => classifyLogLine(l)?.kind).filter(Boolean), ['qemu_cmd_init_failed']);
  // Quoted in failure-modes §0.4 / §1.1 / §1.3
  t.equal(classifyLogLine('Need read/write rights on /var/lib/swtpm-localca/.lock.swtpm-localca for user tss.')?.kind, 'localca_rights');
  t.equal(classifyLogLine('swtpm-localca: touch: cannot touch \'/var/lib/swtpm-localca/.lock.swtpm-localca\': Permission denied')?.kind, 'localca_rights');
  t.equal(classifyLogLine('libtpms/tpm2: Entering failure mode; code: 6, location: TestSymmetricAlgorithm line 230')?.kind, 'failure_mode');
  t.equal(classifyLogLine('SWTPM_NVRAM_LoadData: Error from SWTPM_NVRAM_GetDecryptedData rc = 33')?.kind, 'state_decrypt_failed');
  t.equal(classifyLogLine('libvirt:  error : cannot execute binary /usr/bin/swtpm: Permission denied')?.kind, 'swtpm_exec_denied');
  t.equal(classifyLogLine('Warning: Setting OPENSSL_ENABLE_SHA1_SIGNATURES=1')?.severity, 'warn');
  t.equal(classifyLogLine('Data client disconnected'), null);
});

t.test('versions', async (t) => {
  t.equal(parseDaemonVersion('Compiled against library: libvirt 9.0.0\nRunning against daemon: 9.0.0\n'), '9.0.0');
  t.equal(parseSwtpmVersion('TPM emulator version 0.7.1, Copyright (c) 2014-2021 IBM Corp.\n'), '0.7.1');
  t.equal(parseOpensslVersion('OpenSSL 3.0.19 27 Jan 2026 (Library: OpenSSL 3.0.19 27 Jan 2026)\n'), '3.0.19');
});

t.test('DAC evaluation for another principal', async (t) => {
  const tss = { uid: 103, gids: [110] };
  t.ok(canAccess({ uid: 103, gid: 110, mode: 0o600, isDir: false }, tss, ['r', 'w']));
  t.notOk(canAccess({ uid: 0, gid: 0, mode: 0o644, isDir: false }, tss, ['r', 'w']), 'root-owned 0644 lock: read-only for tss');
  t.ok(canAccess({ uid: 0, gid: 110, mode: 0o660, isDir: false }, tss, ['w']));
  t.ok(canAccess({ uid: 0, gid: 0, mode: 0o711, isDir: true }, tss, ['x']));
  t.notOk(canAccess({ uid: 0, gid: 0, mode: 0o700, isDir: true }, tss, ['x']));
  t.ok(canAccess({ uid: 5, gid: 5, mode: 0o000, isDir: true }, { uid: 0, gids: [0] }, ['r', 'w', 'x']), 'root bypasses DAC');
  t.notOk(canAccess({ uid: 103, gid: 110, mode: 0o070, isDir: false }, tss, ['r']), 'owner class wins even when group would allow');
});
