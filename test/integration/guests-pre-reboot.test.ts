/**
 * `vtpm-agent check --pre-reboot` (the real CLI, real libvirtd/QEMU/swtpm) blocks a reboot that
 * would strand a running user-mode vTPM guest (exit 1, guest and reason listed), allows it once
 * the guest is off (exit 0), and answers "cannot tell" (exit 2) when libvirt cannot be read.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { runCli } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { cleanupGuests, defineGuest, defineSecret, guestName, PREFIX, testUuid, virshOk, waitForLibvirt } from '../harness/libvirt-guests.js';
import type { PreRebootReport } from '../../src/guests/pre-reboot.js';

requireCommands('virsh', 'qemu-system-x86_64', 'swtpm');

t.test('check --pre-reboot blocks while a user-mode vTPM guest runs', async (t) => {
  await waitForLibvirt();
  await cleanupGuests();
  const work = mkdtempSync(path.join(tmpdir(), `${PREFIX}prereboot-`));
  t.teardown(async () => {
    await cleanupGuests();
    rmSync(work, { recursive: true, force: true });
  });
  const novaConf = path.join(work, 'nova.conf');
  writeFileSync(novaConf, '[DEFAULT]\nresume_guests_state_on_host_boot = true\n');
  const name = guestName('prereboot');
  const uuid = testUuid();
  const secretUuid = testUuid();
  // Nova's user mode: the key lives only in an ephemeral libvirt secret, gone after a reboot.
  await defineGuest({ name, uuid, tpmVersion: '2.0', model: 'tpm-crb', secretUuid, nova: { instanceName: 'vm-prereboot', project: 'demo', flavor: 'vtpm.user' } });
  await defineSecret({ uuid: secretUuid, instanceUuid: uuid, key: randomBytes(32), ephemeral: true });
  await virshOk(['start', name]);

  const common = ['--set', `stateDir=${path.join(work, 'state')}`, '--set', `guests.novaConfPath=${novaConf}`, '--log-level', 'error'];
  const env = { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' };

  const json = await runCli(['check', '--pre-reboot', '--json', ...common], { env });
  t.equal(json.code, 1, `exit 1: guests at risk (stderr: ${json.stderr.slice(0, 400)})`);
  const report = JSON.parse(json.stdout) as PreRebootReport;
  t.equal(report.outcome, 'at_risk');
  const ours = report.guests.find((g) => g.name === name);
  t.ok(ours, 'our guest is listed');
  t.equal(ours?.instanceUuid, uuid);
  t.same(ours?.reasons, ['user_secret_mode']);
  t.equal(ours?.project, 'demo');

  const human = await runCli(['check', '--pre-reboot', ...common], { env });
  t.equal(human.code, 1);
  t.match(human.stdout, /^pre-reboot: do not reboot/);
  t.match(human.stdout, new RegExp(`${name} \\(instance ${uuid}, project demo, flavor vtpm.user\\): user_secret_mode`));
  t.match(human.stdout, /no user token to fetch the vTPM key from Barbican/);

  // Off, the guest is not resumed by Nova anyway: nothing of ours is at risk any more.
  await virshOk(['destroy', name]);
  const after = await runCli(['check', '--pre-reboot', '--json', ...common], { env });
  const afterReport = JSON.parse(after.stdout) as PreRebootReport;
  t.notOk(afterReport.guests.some((g) => g.name === name), 'a stopped guest is not at risk');
  // Another suite's guest may run on this shared libvirtd: exit 0 exactly when none is listed.
  t.equal(after.code, afterReport.guests.length ? 1 : 0, `exit ${after.code} matches ${afterReport.guests.length} guest(s) at risk`);

  const broken = await runCli(['check', '--pre-reboot', ...common, '--set', `libvirt.uri=qemu+unix:///system?socket=${path.join(work, 'no-such.sock')}`, '--set', 'libvirt.timeoutSeconds=5'], { env });
  t.equal(broken.code, 2, 'exit 2: cannot tell without libvirt');
  t.match(broken.stdout, /^pre-reboot: cannot tell: the vTPM guest inventory failed: /);
});
