import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseDomainCapabilities } from '../../src/libvirt/domcaps.js';
import { capturedDomcaps, hostFacts, swtpmFacts } from '../fixtures/debian12-facts.js';
import type { HostFacts, SwtpmFacts } from '../../src/libvirt/facts.js';
import { computeVerdict, expectedNovaTraits } from '../../src/verdict.js';

const captured = capturedDomcaps();
const fixture = (name: string) => parseDomainCapabilities(readFileSync(new URL(`../fixtures/libvirt-domcaps/${name}`, import.meta.url), 'utf8'));
const swtpm = swtpmFacts();
const host = hostFacts();
const usable = (v: ReturnType<typeof computeVerdict>) => v.combinations.map((c) => `${c.version}/${c.model}=${c.usable}`);
const codes = (v: ReturnType<typeof computeVerdict>, version: string, model: string) =>
  v.combinations.find((c) => c.version === version && c.model === model)!.reasons.map((r) => r.code);

t.test('Debian 12 host (libvirt 9.0, QEMU 7.2, swtpm 0.7.1): all three usable', async (t) => {
  const v = computeVerdict({ domcaps: captured, swtpm, host });
  t.same(usable(v), ['1.2/tpm-tis=true', '2.0/tpm-tis=true', '2.0/tpm-crb=true']);
  t.equal(v.anyUsable, true);
  t.same(v.expectedNovaTraits, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_CRB', 'COMPUTE_SECURITY_TPM_TIS']);
});

t.test('without swtpm nothing is usable and every combination says why', async (t) => {
  const none: SwtpmFacts = { binaries: { swtpm: null, swtpm_setup: null, swtpm_ioctl: null }, setupFeatures: null, socketFeatures: null, version: null, errors: [] };
  const v = computeVerdict({ domcaps: captured, swtpm: none, host });
  t.equal(v.anyUsable, false);
  for (const c of v.combinations) t.match(c.reasons.map((r) => r.code), ['SWTPM_MISSING', 'SWTPM_SETUP_MISSING', 'SWTPM_IOCTL_MISSING']);
});

t.test('absent backendVersion (libvirt < 8.6): Nova assumes both versions', async (t) => {
  const caps = { ...captured, tpm: { ...captured.tpm, backendVersions: null } };
  t.same(expectedNovaTraits(caps), ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_CRB', 'COMPUTE_SECURITY_TPM_TIS']);
  t.equal(computeVerdict({ domcaps: caps, swtpm, host }).anyUsable, true);
});

t.test('no emulator backend (first libvirt 8.0 format) makes nothing usable and Nova report nothing', async (t) => {
  const caps = fixture('commit-6f7fc0b5/qemu_6.2.0-q35.x86_64.xml');
  const v = computeVerdict({ domcaps: caps, swtpm, host });
  t.equal(v.anyUsable, false);
  t.same(v.expectedNovaTraits, []);
  t.ok(codes(v, '2.0', 'tpm-crb').includes('DOMCAPS_NO_EMULATOR_BACKEND'));
});

t.test("supported='no'", async (t) => {
  const caps = { ...captured, tpm: { ...captured.tpm, supported: false } };
  const v = computeVerdict({ domcaps: caps, swtpm, host });
  t.equal(v.anyUsable, false);
  t.ok(codes(v, '1.2', 'tpm-tis').includes('DOMCAPS_TPM_UNSUPPORTED'));
});

t.test('a version libvirt does not list is unusable for that version only', async (t) => {
  const v = computeVerdict({ domcaps: fixture('qemu_7.2.0-q35.x86_64.xml'), swtpm, host });
  t.same(usable(v), ['1.2/tpm-tis=false', '2.0/tpm-tis=true', '2.0/tpm-crb=true']);
  t.same(codes(v, '1.2', 'tpm-tis'), ['DOMCAPS_VERSION_MISSING']);
  t.same(v.expectedNovaTraits, ['COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_CRB', 'COMPUTE_SECURITY_TPM_TIS']);
});

t.test('no <tpm> element, libvirt unreachable', async (t) => {
  t.same(codes(computeVerdict({ domcaps: fixture('qemu_4.2.0-q35.x86_64.xml'), swtpm, host }), '2.0', 'tpm-tis'), ['DOMCAPS_NO_TPM']);
  const down = computeVerdict({ domcaps: null, libvirtFailure: { code: 'VTPM_ERR_LIBVIRT_UNAVAILABLE', message: 'virsh: failed to connect to the hypervisor' }, swtpm, host });
  t.equal(down.anyUsable, false);
  t.match(down.combinations[0]!.reasons[0]!, { code: 'LIBVIRT_UNAVAILABLE', message: /libvirt probe failed with VTPM_ERR_LIBVIRT_UNAVAILABLE: virsh: failed to connect/ });
});

t.test('output the probes could not use is its own reason, citing the probe failure', async (t) => {
  const garbage = computeVerdict({ domcaps: null, libvirtFailure: { code: 'VTPM_ERR_PARSE', message: 'virsh domcapabilities --virttype kvm: domain capabilities are not well-formed XML' }, swtpm, host });
  t.match(garbage.combinations[0]!.reasons[0]!, { code: 'LIBVIRT_OUTPUT_UNPARSABLE', severity: 'error', message: /VTPM_ERR_PARSE: virsh domcapabilities --virttype kvm: domain capabilities are not well-formed XML/ });
  t.equal(garbage.anyUsable, false);
  const huge = computeVerdict({ domcaps: null, libvirtFailure: { code: 'VTPM_ERR_OUTPUT_TOO_LARGE', message: 'virsh -c qemu:///system domcapabilities printed more than 1 MiB on stdout (the cap for this call) and was killed' }, swtpm, host });
  t.match(huge.combinations[2]!.reasons[0]!, { code: 'LIBVIRT_OUTPUT_TOO_LARGE', message: /more than 1 MiB/ });
  const swtpmGarbage = computeVerdict({ domcaps: captured, swtpm: null, swtpmFailure: { code: 'VTPM_ERR_PARSE', message: 'swtpm_setup --print-capabilities did not print JSON: "x"' }, host });
  t.same(codes(swtpmGarbage, '2.0', 'tpm-crb'), ['SWTPM_OUTPUT_UNPARSABLE']);
  const swtpmHuge = computeVerdict({ domcaps: captured, swtpm: null, swtpmFailure: { code: 'VTPM_ERR_OUTPUT_TOO_LARGE', message: 'swtpm_setup --print-capabilities printed more than 64 KiB' }, host });
  t.same(codes(swtpmHuge, '2.0', 'tpm-crb'), ['SWTPM_OUTPUT_TOO_LARGE']);
  const swtpmTimeout = computeVerdict({ domcaps: captured, swtpm: null, swtpmFailure: { code: 'VTPM_ERR_PROBE_TIMEOUT', message: 'probe swtpm did not finish within 30000 ms' }, host });
  t.match(swtpmTimeout.combinations[0]!.reasons[0]!, { code: 'SWTPM_CAPABILITIES_UNREADABLE', message: /VTPM_ERR_PROBE_TIMEOUT/ });
});

t.test('swtpm_setup without tpm-1.2 feature', async (t) => {
  const v = computeVerdict({ domcaps: captured, swtpm: { ...swtpm, setupFeatures: ['tpm-2.0'] }, host });
  t.same(codes(v, '1.2', 'tpm-tis'), ['SWTPM_VERSION_UNSUPPORTED']);
  t.equal(v.combinations[1]!.usable, true);
});

t.test('host prerequisites: missing user/group/state dir, old libvirt and QEMU', async (t) => {
  const bad: HostFacts = {
    ...host,
    swtpmUser: { name: 'swtpm', exists: false, uid: null },
    swtpmGroup: { name: 'swtpm', exists: false, gid: null },
    stateDir: { ...host.stateDir, exists: false },
    libvirtVersion: '7.0.0',
    qemuVersion: '6.1.0',
  };
  const reasons = codes(computeVerdict({ domcaps: captured, swtpm, host: bad }), '2.0', 'tpm-crb');
  t.same(reasons.sort(), ['LIBVIRT_TOO_OLD', 'QEMU_TOO_OLD', 'SWTPM_GROUP_MISSING', 'SWTPM_STATE_DIR_MISSING', 'SWTPM_USER_MISSING']);
});

t.test('a failed emulation check makes only its TPM version unusable, naming the step', async (t) => {
  const v = computeVerdict({
    domcaps: captured,
    swtpm,
    host,
    emulation: [
      { version: '2.0', level: 'basic', ok: false, failedStep: 'selftest', message: 'TPM_RC_FAILURE' },
      { version: '1.2', level: 'basic', ok: true },
    ],
  });
  t.same(usable(v), ['1.2/tpm-tis=true', '2.0/tpm-tis=false', '2.0/tpm-crb=false']);
  t.match(v.combinations[2]!.reasons[0]!.message, /selftest/);
  t.same(v.expectedNovaTraits.length, 4, 'Nova still advertises: that is the drift the agent reports');
});

t.test('warnings do not make a combination unusable', async (t) => {
  const v = computeVerdict({ domcaps: captured, swtpm, host: { ...host, warnings: [{ code: 'KVM_MISSING', severity: 'warning', message: 'no kvm' }] } });
  t.equal(v.anyUsable, true);
  t.equal(v.warnings.length, 1);
});
