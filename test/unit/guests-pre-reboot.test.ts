/**
 * `check --pre-reboot`'s decision: at risk (exit 1) as the inventory's own classification says,
 * safe (0) only when every domain was read, unknown (2) otherwise; the text names each guest and why.
 */
import t from 'tap';
import { atRiskGuests } from '../../src/guests/classify.js';
import { PRE_REBOOT_EXIT, preRebootFailure, preRebootReport, renderPreReboot } from '../../src/guests/pre-reboot.js';
import type { GuestInventory } from '../../src/guests/types.js';
import { guest, inventory } from '../fixtures/guests.js';

function classified(inv: GuestInventory): GuestInventory {
  return { ...inv, atRisk: atRiskGuests(inv.guests, { libvirtVersion: inv.libvirtVersion, resumeGuestsStateOnHostBoot: inv.resumeGuestsStateOnHostBoot }) };
}

const USER = '11111111-2222-4333-8444-555555555555';
const HOST = '66666666-7777-4888-8999-aaaaaaaaaaaa';

t.test('a running user-mode guest blocks the reboot, with its reason and what to do', async (t) => {
  const inv = classified(
    inventory([
      guest(USER, { nova: { namespaceVersion: '1.1', instanceName: 'vm', projectId: 'p1', projectName: 'demo', userId: 'u', flavorName: 'vtpm.user', extraSpecs: {} } }),
      guest(HOST, { secretMode: 'host', secretModeSource: 'extra-spec', secretPresent: true }),
    ]),
  );
  const r = preRebootReport(inv);
  t.equal(r.outcome, 'at_risk');
  t.equal(PRE_REBOOT_EXIT[r.outcome], 1);
  t.same(r.guests.map((g) => [g.uuid, g.reasons]), [[USER, ['user_secret_mode']]], 'only the user-mode guest');
  t.equal(r.guests[0]?.project, 'demo');
  t.equal(r.guests[0]?.flavor, 'vtpm.user');
  const text = renderPreReboot(r);
  t.match(text, /^pre-reboot: do not reboot: 1 vTPM guest/);
  t.match(text, new RegExp(`instance-1111 \\(instance ${USER}, project demo, flavor vtpm.user\\): user_secret_mode`));
  t.match(text, /no user token/);
});

t.test('resume_guests_state_on_host_boot = false puts every running guest at risk', async (t) => {
  const inv = classified({ ...inventory([guest(HOST, { secretMode: 'host', secretModeSource: 'extra-spec', secretPresent: true })]), resumeGuestsStateOnHostBoot: false });
  const r = preRebootReport(inv);
  t.equal(r.outcome, 'at_risk');
  t.same(r.guests[0]?.reasons, ['resume_guests_off']);
});

t.test('no guest at risk and every domain read: safe, exit 0', async (t) => {
  const r = preRebootReport(classified(inventory([guest(HOST, { secretMode: 'host', secretModeSource: 'extra-spec', secretPresent: true }), guest(USER, { state: 'shutoff', stateReason: 'shutdown' })])));
  t.equal(r.outcome, 'safe');
  t.equal(PRE_REBOOT_EXIT[r.outcome], 0);
  t.match(renderPreReboot(r), /safe to reboot: none of the 2 vTPM guest/);
});

t.test('an unreadable domain or a failed inventory is never "safe": exit 2', async (t) => {
  const inv = classified(inventory([]));
  inv.errors.push({ domain: USER, code: 'VTPM_ERR_GUEST_DOMAIN_UNREADABLE', message: 'virsh dumpxml returned nothing' });
  const r = preRebootReport(inv);
  t.equal(r.outcome, 'unknown');
  t.equal(PRE_REBOOT_EXIT[r.outcome], 2);
  t.match(renderPreReboot(r), /unreadable domain 11111111/);
  const failed = preRebootFailure('VTPM_ERR_LIBVIRT_UNREACHABLE', 'no socket');
  t.equal(failed.outcome, 'unknown');
  t.match(renderPreReboot(failed), /cannot tell: the vTPM guest inventory failed: VTPM_ERR_LIBVIRT_UNREACHABLE: no socket/);
});

t.test('what the inventory could not see is never "safe": no secret list, unknown state or secret mode', async (t) => {
  const host = guest(HOST, { secretMode: 'host', secretModeSource: 'extra-spec', secretPresent: true });
  const noSecrets = preRebootReport(classified({ ...inventory([host]), secrets: null }));
  t.equal(noSecrets.outcome, 'unknown');
  t.match(noSecrets.summary, /secret list could not be read/);
  const unknownState = preRebootReport(classified(inventory([guest(HOST, { secretMode: 'host', secretModeSource: 'extra-spec', secretPresent: true, state: 'unknown' })])));
  t.equal(unknownState.outcome, 'unknown');
  t.match(unknownState.summary, /1 guest\(s\) in an unknown state/);
  const unknownMode = preRebootReport(classified(inventory([guest(USER, { secretMode: 'unknown' })])));
  t.equal(unknownMode.outcome, 'unknown');
  t.equal(PRE_REBOOT_EXIT[unknownMode.outcome], 2);
  t.match(unknownMode.summary, /secret mode is unknown/);
  const noNovaConf = preRebootReport(classified({ ...inventory([host]), resumeGuestsStateOnHostBoot: null, novaConfError: '/etc/nova/nova.conf: EACCES' }));
  t.equal(noNovaConf.outcome, 'unknown', 'an unreadable nova.conf leaves resume_guests_off undecided');
  t.match(noNovaConf.summary, /nova\.conf could not be read \(\/etc\/nova\/nova\.conf: EACCES\)/);
});
