/**
 * `vtpm-agent check` (the real CLI) lists vTPM guests at risk of not restarting after a host
 * reboot, with their reasons, in the table and in --json.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { requireCommands } from '../harness/components.js';
import { cleanupGuests, defineGuest, defineSecret, guestName, PREFIX, testUuid, virshOk, waitForLibvirt } from '../harness/libvirt-guests.js';

requireCommands('virsh', 'qemu-system-x86_64', 'swtpm');
const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = path.join(root, 'src/cli.ts');

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, timeout: 180_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('check lists at-risk vTPM guests with reasons', async (t) => {
  await waitForLibvirt();
  await cleanupGuests();
  const work = mkdtempSync(path.join(tmpdir(), `${PREFIX}check-`));
  t.teardown(async () => {
    await cleanupGuests();
    rmSync(work, { recursive: true, force: true });
  });
  const novaConf = path.join(work, 'nova.conf');
  writeFileSync(novaConf, '[DEFAULT]\nresume_guests_state_on_host_boot = false\n');
  writeFileSync(path.join(work, 'boot_id'), 'dddddddd-0000-4000-8000-000000000004\n');
  const name = guestName('at-risk');
  const uuid = testUuid();
  const secretUuid = testUuid();
  await defineGuest({ name, uuid, tpmVersion: '2.0', model: 'tpm-crb', secretUuid, nova: { instanceName: 'vm-risk', project: 'demo', flavor: 'vtpm' } });
  await defineSecret({ uuid: secretUuid, instanceUuid: uuid, key: randomBytes(32), ephemeral: true });
  await virshOk(['start', name]);

  const common = [
    '--set', `stateDir=${path.join(work, 'state')}`,
    '--set', `guests.novaConfPath=${novaConf}`,
    '--set', `guests.bootIdPath=${path.join(work, 'boot_id')}`,
    '--set', 'emulation.enabled=false',
    '--log-level', 'error',
  ];
  const json = await runCli(['check', '--json', ...common]);
  t.ok(json.stdout.trim().startsWith('{'), `JSON report on stdout (exit ${json.code}, stderr: ${json.stderr.slice(0, 500)})`);
  t.equal(json.code, 0, 'exit 0: vTPM is usable; the guest at risk is in the report, not the exit status');
  const report = JSON.parse(json.stdout) as { sections: Array<{ name: string; ok: boolean | null; data: any }> };
  const inv = report.sections.find((s) => s.name === 'guest-inventory');
  t.ok(inv, 'guest-inventory section');
  const risk = (inv?.data?.atRisk as Array<{ name: string; instanceUuid: string; reasons: string[] }>).find((r) => r.name === name);
  t.same(risk?.reasons, ['user_secret_mode', 'resume_guests_off']);
  t.equal(risk?.instanceUuid, uuid);
  t.equal(inv?.ok, false);
  const restarts = report.sections.find((s) => s.name === 'guest-restarts');
  t.ok(restarts, 'guest-restarts section from the watcher');
  t.ok((restarts?.data?.atRisk as Array<{ name: string }>).some((r) => r.name === name));
  t.equal(restarts?.data?.lastReboot, null, 'no reboot to report on a first run');

  const human = await runCli(['check', ...common]);
  const line = human.stdout.split('\n').find((l) => l.includes(name) && l.includes('user_secret_mode'));
  t.ok(line, 'the table names the guest and its reasons');
  t.match(line ?? '', /resume_guests_off/);
});
