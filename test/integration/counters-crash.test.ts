/**
 * Counts that survive a crash: the real agent (`vtpm-agent serve`) is SIGKILLed right after it
 * decided a restart outcome / counted a Barbican failure in nova-compute's log, before any scrape.
 * The next agent shows the totals; a third shows them again, none counted twice.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { waitFor } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { failureLine } from '../harness/nova-log.js';
import { serve, testGuestsConfig } from '../harness/serve.js';

requireCommands('virsh', 'libvirtd');

const work = mkdtempSync(path.join(tmpdir(), 'vtpmtest-counters-crash-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const stateDir = path.join(work, 'state');
const novaLog = path.join(work, 'nova-compute.log');
const GONE_UUID = '0badc0de-0000-4000-8000-00000000dead';

function agent(t: { teardown(fn: () => unknown): void }) {
  return serve(t, work, {
    stateDir,
    emulation: { enabled: false },
    health: { enabled: false },
    guests: testGuestsConfig(work),
    novaLog: { source: 'file', path: novaLog, startAt: 'beginning', pollIntervalSeconds: 1 },
  });
}

t.test('restart outcomes and log-classified Barbican failures survive a SIGKILL before any scrape', async (t) => {
  writeFileSync(path.join(work, 'nova.conf'), '[DEFAULT]\nresume_guests_state_on_host_boot = true\n');
  mkdirSync(path.join(work, 'swtpm-logs'));
  // The previous boot ran a vTPM guest that libvirt no longer has: the new boot decides it `gone`.
  writeFileSync(path.join(work, 'boot_id'), 'bbbbbbbb-0000-4000-8000-000000000002\n');
  mkdirSync(path.join(stateDir, 'guests'), { recursive: true });
  writeFileSync(
    path.join(stateDir, 'guests', 'snapshot.json'),
    JSON.stringify({ version: 1, bootId: 'bbbbbbbb-0000-4000-8000-000000000001', bootTime: null, takenAt: Date.now() - 60_000, guests: [{ uuid: GONE_UUID, name: 'vtpmtest-crash-gone', instanceUuid: GONE_UUID, secretMode: 'user', encryptionSecret: null }] }),
  );
  appendFileSync(novaLog, `${failureLine(1)}\n`);

  const first = await agent(t);
  // Wait by the files only (no scrape): the outcome is decided and saved, the failure counted and saved.
  await waitFor('the outcome decided and saved', () => {
    const w = JSON.parse(readFileSync(path.join(stateDir, 'guests', 'watch.json'), 'utf8')) as { guests: Array<{ uuid: string; status: string }> };
    return w.guests.find((g) => g.uuid === GONE_UUID)?.status === 'gone';
  });
  await waitFor('the log failure saved', () => existsSync(path.join(stateDir, 'nova-log.json')) && /"forbidden":1/.test(readFileSync(path.join(stateDir, 'nova-log.json'), 'utf8')));
  await first.kill();

  const second = await agent(t);
  // The series appears once the watch is loaded, already with the restored total (never a 0 first).
  const seen = await waitFor('restart totals exported', async () => second.sample('vtpm_guest_restarts_total', 'outcome="gone"'));
  t.equal(seen, 1, 'the outcome decided by the killed agent is in the total');
  t.equal(await second.sample('vtpm_guest_restarts_total', 'outcome="restarted"'), 0);
  await waitFor('log counts restored', async () => (await second.sample('vtpm_barbican_failures_total', 'source="log",reason="forbidden"')) === 1);
  // One more failure line, then a crash again right after it is saved.
  appendFileSync(novaLog, `${failureLine(2)}\n`);
  await waitFor('the second failure saved', () => /"forbidden":2/.test(readFileSync(path.join(stateDir, 'nova-log.json'), 'utf8')));
  await second.kill();

  const third = await agent(t);
  t.equal(await waitFor('restart totals exported', async () => third.sample('vtpm_guest_restarts_total', 'outcome="gone"')), 1, 'not counted twice');
  await waitFor('log counts restored, none twice', async () => (await third.sample('vtpm_barbican_failures_total', 'source="log",reason="forbidden"')) === 2);
  // Stays at 2: the saved position says both lines were read.
  await new Promise((r) => setTimeout(r, 2500));
  t.equal(await third.sample('vtpm_barbican_failures_total', 'source="log",reason="forbidden"'), 2);
  await third.kill();
});
