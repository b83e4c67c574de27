/**
 * The restart watcher's reboot scenario, with the reason coming from nova-compute's log: a
 * user-mode vTPM guest (ephemeral libvirt secret, undefined after start as Nova does) runs, the
 * agent snapshots it; the "reboot" (guest down, new boot id) follows; nova-compute logs that it
 * could not fetch the key from Barbican and failed to resume the instance. The watcher reports the
 * failed restart with reason `barbican_access`, given by the log follower.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { Agent } from '../../src/agent.js';
import { configSchema } from '../../src/config/schema.js';
import type { AgentExtension } from '../../src/extension-api.js';
import { GuestRestartWatcher } from '../../src/guests/watcher.js';
import { NovaLogExtension } from '../../src/logs/extension.js';
import { guestInventoryProbe } from '../../src/probes/guest-inventory.js';
import type { Probe } from '../../src/probes/types.js';
import { requireCommands } from '../harness/components.js';
import { freePort } from '../harness/agent.js';
import { defineGuest, defineSecret, testUuid, virsh, virshOk, waitFor, waitForLibvirt, type GuestSpec } from '../harness/libvirt-guests.js';

requireCommands('virsh', 'qemu-system-x86_64', 'swtpm');

const NAME = 'vtpmtest-barbican-restart';
const work = mkdtempSync(path.join(tmpdir(), 'vtpm-barbican-restart-'));
const bootIdFile = path.join(work, 'boot_id');
const stateDir = path.join(work, 'state');
const novaLog = path.join(work, 'nova-compute.log');

async function cleanup(): Promise<void> {
  await virsh(['destroy', NAME]);
  const r = await virsh(['undefine', '--tpm', NAME]);
  if (r.code !== 0) await virsh(['undefine', NAME]);
}

t.teardown(async () => {
  await cleanup().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function oslo(level: string, logger: string, rest: string): string {
  const d = new Date().toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 23)} 4242 ${level} ${logger} ${rest}\n`;
}

async function startAgent(withLog: boolean): Promise<{ agent: Agent; url: string }> {
  const port = await freePort();
  const config = configSchema.parse({
    stateDir,
    listen: { host: '127.0.0.1', port },
    guests: { bootIdPath: bootIdFile, novaConfPath: path.join(work, 'nova.conf'), restartDeadlineSeconds: 8, snapshotIntervalSeconds: 2, resyncIntervalSeconds: 1, swtpmLogDir: path.join(work, 'swtpm-logs') },
    novaLog: { source: 'file', path: novaLog, startAt: 'beginning', pollIntervalSeconds: 0.2 },
    barbican: { enabled: false },
  });
  const extensions: AgentExtension[] = [new GuestRestartWatcher()];
  if (withLog) extensions.push(new NovaLogExtension());
  const log = pino({ level: 'info' }, pino.destination({ dest: path.join(work, 'agent.log'), append: true, sync: true }));
  const agent = new Agent({ config, log, probes: [guestInventoryProbe as Probe], extensions });
  await agent.start();
  return { agent, url: `http://127.0.0.1:${port}` };
}

t.test('a failed restart carries the Barbican reason nova-compute logged', async (t) => {
  await waitForLibvirt();
  await cleanup();
  writeFileSync(bootIdFile, 'aaaaaaaa-0000-4000-8000-00000000000a\n');
  writeFileSync(path.join(work, 'nova.conf'), '[DEFAULT]\nresume_guests_state_on_host_boot = true\n');
  writeFileSync(novaLog, '');
  const spec: GuestSpec = { name: NAME, uuid: testUuid(), tpmVersion: '2.0', model: 'tpm-crb', secretUuid: testUuid(), nova: { instanceName: 'vm-barbican', project: 'demo', flavor: 'vtpm' } };
  await defineSecret({ uuid: spec.secretUuid!, instanceUuid: spec.uuid, key: randomBytes(32), ephemeral: true });
  await defineGuest(spec);
  await virshOk(['start', NAME]);
  // user mode: Nova undefines the libvirt secret as soon as the guest runs.
  await virshOk(['secret-undefine', spec.secretUuid!]);

  const first = await startAgent(false);
  await waitFor('snapshot with the guest', async () => {
    const snap = JSON.parse(readFileSync(path.join(stateDir, 'guests', 'snapshot.json'), 'utf8')) as { guests: Array<{ uuid: string }> };
    return snap.guests.some((g) => g.uuid === spec.uuid);
  });
  await first.agent.stop();

  // The reboot: the guest is down, the boot id is new, nova-compute tries to resume it.
  await virshOk(['destroy', NAME]);
  writeFileSync(bootIdFile, 'bbbbbbbb-0000-4000-8000-00000000000b\n');
  const req = 'req-5c1f0a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f';
  appendFileSync(novaLog, oslo('INFO', 'nova.compute.manager', `[None ${req} - - - - - -] [instance: ${spec.uuid}] Rebooting instance after nova-compute restart.`));
  appendFileSync(novaLog, oslo('ERROR', 'castellan.key_manager.barbican_key_manager', `[None ${req} - - - - - -] Error creating Barbican client: The service catalog is empty.: keystoneauth1.exceptions.catalog.EmptyCatalog: The service catalog is empty.`));
  appendFileSync(novaLog, oslo('WARNING', 'nova.compute.manager', `[None ${req} - - - - - -] [instance: ${spec.uuid}] Failed to resume instance`));

  const second = await startAgent(true);
  t.teardown(() => second.agent.stop());
  const watch = await waitFor('the restart decided', async () => {
    const w = JSON.parse(readFileSync(path.join(stateDir, 'guests', 'watch.json'), 'utf8')) as { bootId: string; guests: Array<{ uuid: string; status: string; reason?: string; detail?: string }> };
    const g = w.guests.find((x) => x.uuid === spec.uuid);
    return w.bootId.startsWith('bbbbbbbb') && g && g.status === 'failed' ? g : undefined;
  }, 90_000);
  t.equal(watch.reason, 'barbican_access', 'the Barbican reason, not the generic user_secret_mode');
  t.match(watch.detail, /empty_catalog/);
  const metrics = await (await fetch(`${second.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  t.match(metrics, new RegExp(`vtpm_guest_restart_failed\\{[^}]*instance_uuid="${spec.uuid}"[^}]*reason="barbican_access"[^}]*\\} 1`));
  t.match(metrics, /vtpm_barbican_failures_total\{source="log",reason="empty_catalog"\} 1/);
  t.match(metrics, new RegExp(`vtpm_nova_log_guest_barbican_failure_timestamp_seconds\\{instance_uuid="${spec.uuid}",reason="empty_catalog"\\}`));
  await second.agent.stop();
});
