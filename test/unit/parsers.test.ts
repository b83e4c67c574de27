import { readFileSync } from 'node:fs';
import t from 'tap';
import { parsePasswd } from '../../src/host/accounts.js';
import { parseHardwareVirtualization } from '../../src/host/cpu.js';
import { parseSwtpmCapabilities } from '../../src/host/swtpm-capabilities.js';
import { parseVirshVersion } from '../../src/libvirt/version.js';
import { hostPathResolver } from '../../src/util/hostpath.js';

t.test('swtpm capabilities captured from swtpm 0.7.1', async (t) => {
  const setup = parseSwtpmCapabilities(readFileSync(new URL('../fixtures/swtpm-setup-caps-0.7.1.json', import.meta.url), 'utf8'), 'swtpm_setup');
  t.equal(setup.version, '0.7.1');
  t.ok(setup.features.includes('tpm-1.2') && setup.features.includes('tpm-2.0') && setup.features.includes('cmdarg-pwdfile-fd'));
  const socket = parseSwtpmCapabilities(readFileSync(new URL('../fixtures/swtpm-socket-caps-0.7.1.json', import.meta.url), 'utf8'), 'swtpm socket');
  t.ok(socket.features.includes('cmdarg-pwd-fd'));
});

t.test('garbage from --print-capabilities is a coded parse error naming the command', async (t) => {
  for (const bad of ['', 'Unsupported TPM interface type', '{"type":"swtpm"}', '[1,2]', '{"type":"swtpm","features":"tpm-2.0"}', '\u0000\u00ff']) {
    t.throws(() => parseSwtpmCapabilities(bad, 'swtpm_setup'), { code: 'VTPM_ERR_PARSE', message: /swtpm_setup --print-capabilities/ });
  }
});

t.test('virsh version', async (t) => {
  const out = 'Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n';
  t.same(parseVirshVersion(out), { libvirt: '9.0.0', hypervisor: 'QEMU', hypervisorVersion: '7.2.22' });
  t.same(parseVirshVersion('garbage'), { libvirt: null, hypervisor: null, hypervisorVersion: null });
});

t.test('passwd and group files', async (t) => {
  const entries = parsePasswd('root:x:0:0:root:/root:/bin/bash\n# comment\n\ntss:x:103:110::/var/lib/tpm:/bin/false\nbroken line\nbad:x:notanumber:1\n');
  t.same(entries, [{ name: 'root', uid: 0, gid: 0 }, { name: 'tss', uid: 103, gid: 110 }]);
});

t.test('host paths resolve under the host root and cannot escape it', async (t) => {
  t.equal(hostPathResolver('/')('/var/lib/libvirt'), '/var/lib/libvirt');
  const inPod = hostPathResolver('/host');
  t.equal(inPod('/var/lib/libvirt/swtpm'), '/host/var/lib/libvirt/swtpm');
  t.equal(inPod('/../../etc/passwd'), '/host/etc/passwd');
  t.equal(inPod('relative/x'), '/host/relative/x');
});

t.test('os-release', async (t) => {
  const { parseOsRelease } = await import('../../src/host/os-release.js');
  t.equal(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'), 'Debian GNU/Linux 12 (bookworm)');
  t.equal(parseOsRelease("NAME='Ubuntu'\nVERSION='24.04 LTS'\n"), 'Ubuntu 24.04 LTS');
  t.equal(parseOsRelease('garbage\n\u0000'), null);
});

t.test('children never get the agent credentials', async (t) => {
  const { childEnv } = await import('../../src/util/child-env.js');
  const env = childEnv({ PATH: '/usr/bin', LANG: 'C', OS_PASSWORD: 'x', OS_AUTH_URL: 'u', VTPM_AGENT__OPENSTACK__AUTH__PASSWORD: 'y', MY_API_TOKEN: 'z', HOME: '/root' });
  t.same(env, { PATH: '/usr/bin', LANG: 'C', HOME: '/root' });
  const { runCommand } = await import('../../src/util/exec.js');
  const out = await runCommand('env', [], { timeoutMs: 10_000, maxOutputBytes: 1024 * 1024, env: { ...process.env, OS_PASSWORD: 'hunter2' } });
  t.notMatch(out.stdout, /hunter2|OS_PASSWORD/);
  t.match(out.stdout, /PATH=/);
});

t.test('hardware virtualization from /proc/cpuinfo flags', async (t) => {
  t.equal(parseHardwareVirtualization('processor\t: 0\nflags\t\t: fpu vme de pse vmx ssse3\n'), true, 'Intel VT-x');
  t.equal(parseHardwareVirtualization('flags\t\t: fpu svm lm\n'), true, 'AMD-V');
  t.equal(parseHardwareVirtualization('flags\t\t: fpu vme hypervisor svmx\n'), false, 'a guest without nested virtualization; no substring matches');
  t.equal(parseHardwareVirtualization('processor\t: 0\nBogoMIPS\t: 50.00\n'), null, 'no flags line: unknown');
});
