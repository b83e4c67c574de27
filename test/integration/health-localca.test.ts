/**
 * C4 against the real swtpm local CA: a root-owned `.lock.swtpm-localca` (what a root
 * `swtpm_setup --create-ek-cert` leaves behind). The agent must say so, and then a real libvirt
 * start of a *new* vTPM guest must really fail, with the failure attributed to that guest by the
 * log scan. The lock's original owner and mode (or its absence) are restored in teardown: the
 * local CA is shared with every other test on this machine, so the broken window is kept short.
 */
import { chmodSync, chownSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { requireLibvirt } from '../harness/libvirt.js';
import { requireCommands } from '../harness/components.js';
import { defineGuest, findingsFor, healthRig, removeGuest, virsh, type TestGuest } from '../harness/health.js';
import { healthLocalCaProbe } from '../../src/health/checks/localca.js';
import { healthLogsProbe } from '../../src/health/checks/logs.js';
import type { Probe } from '../../src/probes/types.js';

requireLibvirt();
requireCommands('swtpm', 'swtpm_setup', 'swtpm_localca');

const CA_DIR = '/var/lib/swtpm-localca';
const LOCK = `${CA_DIR}/.lock.swtpm-localca`;

t.test('root-owned local CA lock: the agent flags it, then libvirt fails to create a new vTPM', async (t) => {
  const rig = healthRig();
  t.teardown(() => rig.cleanup());
  let guest: TestGuest | undefined;
  t.teardown(async () => {
    if (guest) await removeGuest(guest);
  });

  // Healthy first: the check is green on this machine before the fault.
  await rig.run([healthLocalCaProbe as Probe], { inventory: false });
  t.equal(rig.check('localca')?.status, 'pass', JSON.stringify(rig.check('localca')?.findings));

  guest = await defineGuest('ca');
  const before = existsSync(LOCK) ? statSync(LOCK) : null;
  const restore = () => {
    if (before) {
      chownSync(LOCK, before.uid, before.gid);
      chmodSync(LOCK, before.mode & 0o7777);
    } else rmSync(LOCK, { force: true });
  };
  t.teardown(restore);

  let start: Awaited<ReturnType<typeof virsh>>;
  try {
    if (before) chownSync(LOCK, 0, 0);
    else writeFileSync(LOCK, '');
    chmodSync(LOCK, 0o644);

    await rig.run([healthLocalCaProbe as Probe], { inventory: false });
    const ca = rig.check('localca');
    t.equal(ca?.status, 'fail');
    const f = findingsFor(ca, LOCK);
    t.equal(f.length, 1);
    t.equal(f[0]?.reason, 'VTPM_HEALTH_LOCALCA_FILE_NOT_USABLE');
    t.match(f[0]?.message, /tss cannot read and write \/var\/lib\/swtpm-localca\/\.lock\.swtpm-localca \(root:root 0644\)/);
    t.match(f[0]?.remedy, /chown -R <swtpm_user>:root/);

    // The proof: a new vTPM guest really fails to start.
    start = await virsh(['start', guest.name]);
  } finally {
    restore();
  }
  t.not(start.code, 0, 'libvirt refused to start the new vTPM guest');
  t.match(start.stderr, /Could not run '\/usr\/bin\/swtpm_setup'\. exitstatus: 1/);
  t.match(readFileSync(guest.swtpmLog, 'utf8'), /Need read\/write rights on \/var\/lib\/swtpm-localca\/\.lock\.swtpm-localca for user tss\./);

  // The log scan attributes the failure to the guest.
  await rig.run([healthLogsProbe as Probe]);
  const kinds = findingsFor(rig.check('logs'), guest.name).map((x) => x.details?.kind);
  t.ok(kinds.includes('localca_rights'), `kinds: ${kinds.join(',')}`);
  t.ok(kinds.includes('authoring_failed'));
  t.same(findingsFor(rig.check('tpm-reset'), guest.name), [], 'a failed first manufacture is no reset');

  // Restored: green again, and the same guest now starts.
  await rig.run([healthLocalCaProbe as Probe], { inventory: false });
  t.equal(rig.check('localca')?.status, 'pass');
  const again = await virsh(['start', guest.name]);
  t.equal(again.code, 0, again.stderr);
});
