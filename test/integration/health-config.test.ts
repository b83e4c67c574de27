/**
 * Host-wide checks against real files and binaries, with faults made in temp copies: qemu.conf
 * and nova.conf naming different principals (C3), swtpm_ioctl missing from PATH (C1), a local
 * CA owned by the wrong user (C4, on a private CA config), and garbage or missing inputs
 * everywhere, which must keep every probe answering (no probe may throw).
 */
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { requireLibvirt } from '../harness/libvirt.js';
import { requireCommands } from '../harness/components.js';
import { healthProbes, healthRig } from '../harness/health.js';
import { parsePasswd } from '../../src/host/accounts.js';
import { healthBinariesProbe } from '../../src/health/checks/binaries.js';
import { healthPrincipalProbe } from '../../src/health/checks/principal.js';
import { healthLocalCaProbe } from '../../src/health/checks/localca.js';
import type { Probe } from '../../src/probes/types.js';
import { CHECK_IDS } from '../../src/health/types.js';

requireLibvirt();
requireCommands('swtpm', 'swtpm_setup', 'swtpm_ioctl', 'swtpm_localca', 'swtpm_cert');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-health-config-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const tss = parsePasswd(readFileSync('/etc/passwd', 'utf8')).find((u) => u.name === 'tss')!;

t.test('healthy host: every check passes or does not apply', async (t) => {
  const rig = healthRig();
  t.teardown(() => rig.cleanup());
  const results = await rig.run();
  for (const [name, r] of results) t.ok(r.ok, `${name} ran: ${r.error?.message ?? ''}`);
  const seen = new Set<string>();
  for (const id of CHECK_IDS) {
    const c = rig.check(id);
    t.ok(c, `${id} reported`);
    if (!c) continue;
    seen.add(id);
    // Other tests share this host; only their guests' per-guest findings may show up here.
    const own = c.findings.filter((f) => f.status === 'fail' && !(f.subject ?? '').startsWith('vtpmtest-'));
    t.same(own, [], `${id}: ${c.status}`);
  }
  t.equal(rig.check('apparmor')?.status, 'not-applicable');
  t.equal(rig.check('selinux')?.status, 'not-applicable');
  t.equal(rig.check('container')?.status, 'not-applicable');
  t.match(rig.check('binaries')?.facts?.pathFrom, /^libvirtd \(pid \d+\)$/, "binaries are looked up on the running libvirtd's PATH");
  t.equal(seen.size, CHECK_IDS.length);
});

t.test('qemu.conf and nova.conf naming different principals (temp copies via config paths)', async (t) => {
  const qemuConf = path.join(tmp, 'qemu.conf');
  const novaConf = path.join(tmp, 'nova.conf');
  copyFileSync('/etc/libvirt/qemu.conf', qemuConf);
  writeFileSync(qemuConf, `${readFileSync(qemuConf, 'utf8')}\nswtpm_user = "tss"\nswtpm_group = "tss"\n`);
  writeFileSync(novaConf, '[DEFAULT]\nresume_guests_state_on_host_boot = true\n[libvirt]\nvirt_type = qemu\nswtpm_enabled = True\nswtpm_user = root\nswtpm_group = root\n');
  const rig = healthRig({ health: { qemuConf, novaConf: [novaConf] } });
  t.teardown(() => rig.cleanup());
  await rig.run([healthPrincipalProbe as Probe], { inventory: false });
  const c = rig.check('principal')!;
  t.equal(c.status, 'fail');
  t.same(c.findings.map((f) => f.reason), ['VTPM_HEALTH_PRINCIPAL_MISMATCH', 'VTPM_HEALTH_PRINCIPAL_MISMATCH']);
  t.match(c.findings[0]!.message, new RegExp(`user tss \\(uid ${tss.uid}\\) but nova.conf \\[libvirt\\] swtpm_user is root \\(uid 0\\)`));
  t.match(c.findings[0]!.remedy, /name the same principal/);
  // Agreeing files: green.
  writeFileSync(novaConf, '[libvirt]\nswtpm_enabled = True\nswtpm_user = tss\nswtpm_group = tss\n');
  await rig.run([healthPrincipalProbe as Probe], { inventory: false });
  t.equal(rig.check('principal')!.status, 'pass');
});

t.test('swtpm_ioctl missing from PATH: C1 fails naming it, C2 still reads capabilities', async (t) => {
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin);
  for (const b of ['swtpm', 'swtpm_setup', 'swtpm_localca', 'swtpm_cert', 'certtool', 'openssl']) symlinkSync(`/usr/bin/${b}`, path.join(bin, b));
  const rig = healthRig({ health: { pathSource: 'agent' } }, { ...process.env, PATH: bin });
  t.teardown(() => rig.cleanup());
  await rig.run([healthBinariesProbe as Probe], { inventory: false });
  const c = rig.check('binaries')!;
  t.equal(c.status, 'fail');
  t.same(c.findings.map((f) => [f.reason, f.subject]), [['VTPM_HEALTH_BINARY_MISSING', 'swtpm_ioctl']]);
  t.match(c.findings[0]!.message, /swtpm processes outlive their guests/);
  t.equal(rig.check('capabilities')!.status, 'pass');
  t.ok((rig.check('capabilities')!.facts?.socketFeatures as string[]).includes('cmdarg-pwd-fd'));
});

t.test('a private local CA owned by the wrong user (C4 follows swtpm_setup.conf, never a fixed path)', async (t) => {
  const ca = path.join(tmp, 'ca');
  mkdirSync(ca, { mode: 0o750 });
  chownSync(ca, tss.uid, 0);
  const caConf = path.join(tmp, 'swtpm-localca.conf');
  const setupConf = path.join(tmp, 'swtpm_setup.conf');
  writeFileSync(caConf, `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
  writeFileSync(setupConf, `create_certs_tool= /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${caConf}\n`);
  chmodSync(tmp, 0o755);
  const rig = healthRig({ health: { swtpmSetupConf: setupConf } });
  t.teardown(() => rig.cleanup());
  await rig.run([healthLocalCaProbe as Probe], { inventory: false });
  t.equal(rig.check('localca')!.status, 'pass', JSON.stringify(rig.check('localca')!.findings));
  writeFileSync(path.join(ca, 'certserial'), '7\n');
  chownSync(path.join(ca, 'certserial'), 0, 0);
  await rig.run([healthLocalCaProbe as Probe], { inventory: false });
  t.same(rig.check('localca')!.findings.map((f) => [f.reason, f.subject]), [['VTPM_HEALTH_LOCALCA_FILE_NOT_USABLE', `${ca}/certserial`]]);
  chownSync(ca, 0, 0);
  await rig.run([healthLocalCaProbe as Probe], { inventory: false });
  t.ok(rig.check('localca')!.findings.some((f) => f.reason === 'VTPM_HEALTH_LOCALCA_DIR_NOT_USABLE'));
  rmSync(ca, { recursive: true });
  await rig.run([healthLocalCaProbe as Probe], { inventory: false });
  t.same(rig.check('localca')!.findings.map((f) => f.reason), ['VTPM_HEALTH_LOCALCA_DIR_MISSING']);
});

t.test('missing or garbage inputs: every probe still answers', async (t) => {
  const junk = path.join(tmp, 'junk');
  mkdirSync(junk);
  const garbage = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x5b, 0x5b, 0x3d, 0x0a, 0x22]);
  for (const f of ['qemu.conf', 'nova.conf', 'passwd', 'group', 'swtpm_setup.conf']) writeFileSync(path.join(junk, f), garbage);
  const variants = [
    { name: 'garbage files', health: { qemuConf: `${junk}/qemu.conf`, novaConf: [`${junk}/nova.conf`], passwdFile: `${junk}/passwd`, groupFile: `${junk}/group`, swtpmSetupConf: `${junk}/swtpm_setup.conf`, swtpmLogDir: junk, qemuLogDir: junk, swtpmRunDir: junk, macLogFiles: [`${junk}/qemu.conf`] } },
    { name: 'missing files', health: { qemuConf: `${junk}/none`, novaConf: [`${junk}/none`], passwdFile: `${junk}/none`, groupFile: `${junk}/none`, swtpmSetupConf: `${junk}/none`, swtpmLogDir: `${junk}/none`, qemuLogDir: `${junk}/none`, swtpmRunDir: `${junk}/none` } },
    { name: 'directories instead of files', health: { qemuConf: junk, novaConf: [junk], passwdFile: junk, groupFile: junk, swtpmSetupConf: junk } },
  ];
  for (const v of variants) {
    const rig = healthRig({ health: v.health, swtpm: { stateDir: `${junk}/state` } });
    t.teardown(() => rig.cleanup());
    const results = await rig.run();
    for (const p of healthProbes) {
      const r = results.get(p.name)!;
      t.ok(r.ok, `${v.name}: ${p.name} answered${r.ok ? '' : `: ${r.error?.message}`}`);
      t.ok(p.report?.(r as never).summary, `${v.name}: ${p.name} has a report`);
    }
  }
});
