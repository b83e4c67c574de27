/**
 * The reboot scenario with real libvirt and a real Prometheus: vTPM guests run (two with
 * encrypted vTPM through ephemeral libvirt secrets), the agent snapshots them and stops; libvirtd
 * restarts (ephemeral secrets vanish, as after a host reboot), the guests are destroyed and the
 * boot id changes; a new agent follows them while some are restarted (their secret re-created,
 * as Nova would) and one fails for its missing secret. The agent is restarted in the middle of
 * the watch. Prometheus scrapes it with the shipped rules and fires VtpmGuestRestartFailed.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { Agent } from '../../src/agent.js';
import { configSchema, type AgentConfig } from '../../src/config/schema.js';
import { GuestRestartWatcher } from '../../src/guests/watcher.js';
import type { Watch } from '../../src/guests/restart-model.js';
import { guestInventoryProbe } from '../../src/probes/guest-inventory.js';
import type { Probe } from '../../src/probes/types.js';
import { cleanupGuests, defineGuest, defineSecret, domState, guestName, PREFIX, RUN_PREFIX, restartLibvirtd, secretUuids, testUuid, virsh, virshOk, waitFor, waitForLibvirt, type GuestSpec } from '../harness/libvirt-guests.js';
import { freePort, startPrometheus } from '../harness/prometheus.js';
import { requireCommands } from '../harness/components.js';
import { extensionContext } from '../fixtures/extension-context.js';

requireCommands('virsh', 'libvirtd', 'qemu-system-x86_64', 'swtpm', 'prometheus');

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), `${PREFIX}reboot-`));
const bootIdFile = path.join(work, 'boot_id');
const stateDir = path.join(work, 'state');
const logFile = path.join(work, 'agent.log');

interface Running {
  agent: Agent;
  url: string;
  watcher: GuestRestartWatcher;
}

async function startAgent(port: number, options: { stateDir?: string; deadlineSeconds?: number } = {}): Promise<Running> {
  const config: AgentConfig = configSchema.parse({
    logLevel: 'info',
    stateDir: options.stateDir ?? stateDir,
    listen: { host: '127.0.0.1', port },
    guests: {
      bootIdPath: bootIdFile,
      novaConfPath: path.join(work, 'nova.conf'),
      restartDeadlineSeconds: options.deadlineSeconds ?? 600,
      snapshotIntervalSeconds: 2,
      resyncIntervalSeconds: 2,
      swtpmLogDir: path.join(work, 'swtpm-logs'),
    },
  });
  const watcher = new GuestRestartWatcher();
  const log = pino({ level: 'info' }, pino.destination({ dest: logFile, append: true, sync: true }));
  const agent = new Agent({ config, log, probes: [guestInventoryProbe as Probe], extensions: [watcher] });
  await agent.start();
  return { agent, url: `http://127.0.0.1:${port}`, watcher };
}

async function metrics(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

function readWatch(): Watch {
  return JSON.parse(readFileSync(path.join(stateDir, 'guests', 'watch.json'), 'utf8')) as Watch;
}

t.teardown(async () => {
  await waitForLibvirt().catch(() => undefined);
  await cleanupGuests().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

t.test('reboot: restarted guests are reported restarted, the one without its secret failed with secret_missing, and the alert fires', async (t) => {
  await waitForLibvirt();
  await cleanupGuests();
  writeFileSync(bootIdFile, 'aaaaaaaa-0000-4000-8000-000000000001\n');
  writeFileSync(path.join(work, 'nova.conf'), '[DEFAULT]\nresume_guests_state_on_host_boot = true\n');

  const keyA = randomBytes(32);
  const keyB = randomBytes(32);
  const specs: Record<'a' | 'b' | 'c', GuestSpec> = {
    a: { name: guestName('enc-back'), uuid: testUuid(), tpmVersion: '2.0', model: 'tpm-crb', secretUuid: testUuid(), nova: { instanceName: 'vm-a', project: 'demo', flavor: 'vtpm' } },
    b: { name: guestName('enc-lost'), uuid: testUuid(), tpmVersion: '2.0', model: 'tpm-crb', secretUuid: testUuid(), nova: { instanceName: 'vm-b', project: 'demo', flavor: 'vtpm' } },
    c: { name: guestName('plain'), uuid: testUuid(), tpmVersion: '1.2', model: 'tpm-tis', nova: { instanceName: 'vm-c', project: 'demo', flavor: 'vtpm12', extraSpecs: { 'hw:tpm_secret_security': 'host' } } },
  };
  for (const s of Object.values(specs)) await defineGuest(s);
  await defineSecret({ uuid: specs.a.secretUuid!, instanceUuid: specs.a.uuid, key: keyA, ephemeral: true });
  await defineSecret({ uuid: specs.b.secretUuid!, instanceUuid: specs.b.uuid, key: keyB, ephemeral: true });
  for (const s of Object.values(specs)) await virshOk(['start', s.name]);

  // Before the reboot: the agent inventories the guests, predicts the risk and snapshots them.
  const port1 = await freePort();
  const first = await startAgent(port1);
  const snapFile = path.join(stateDir, 'guests', 'snapshot.json');
  await waitFor('snapshot with the three guests', async () => {
    const snap = JSON.parse(readFileSync(snapFile, 'utf8')) as { guests: Array<{ name: string }> };
    return snap.guests.filter((g) => g.name.startsWith(RUN_PREFIX)).length === 3;
  });
  const status = await waitFor('inventory in /status', async () => {
    const body = (await (await fetch(`${first.url}/status`)).json()) as { sections: Array<{ name: string; data: any }> };
    const inv = body.sections.find((s) => s.name === 'guest-inventory');
    return inv?.data?.guests ? inv.data : undefined;
  });
  const ours = (status.guests as Array<{ name: string; secretMode: string; secretPresent: boolean | null; tpmVersion: string; instanceUuid: string }>).filter((g) => g.name.startsWith(RUN_PREFIX));
  t.same(
    ours.map((g) => [g.name, g.secretMode, g.secretPresent, g.tpmVersion]).sort(),
    [
      [specs.a.name, 'user', true, '2.0'],
      [specs.b.name, 'user', true, '2.0'],
      [specs.c.name, 'none', null, '1.2'],
    ].sort(),
    'inventory: secret mode inferred (ephemeral secret → user); an unencrypted vTPM is none whatever its extra spec says',
  );
  const atRisk = (status.atRisk as Array<{ name: string; reasons: string[] }>).filter((r) => r.name.startsWith(RUN_PREFIX));
  t.same(atRisk.map((r) => [r.name, r.reasons]).sort(), [[specs.a.name, ['user_secret_mode']], [specs.b.name, ['user_secret_mode']]].sort(), 'user-mode guests are at risk');
  await first.agent.stop();

  // The "reboot": libvirtd restarts (ephemeral secrets vanish), guests go down, a new boot id.
  await restartLibvirtd();
  const secretsAfter = await secretUuids();
  t.notOk(secretsAfter.includes(specs.a.secretUuid!) || secretsAfter.includes(specs.b.secretUuid!), 'ephemeral secrets vanished with libvirtd');
  // Running guests normally survive a libvirtd restart; one that did not is down already, which is what we need.
  for (const s of Object.values(specs)) {
    await virsh(['destroy', s.name]);
    t.match(await domState(s.name), /^shut off/, `${s.name} is down`);
  }
  writeFileSync(bootIdFile, 'bbbbbbbb-0000-4000-8000-000000000002\n');

  const port2 = await freePort();
  const second = await startAgent(port2);
  const watch0 = await waitFor('watch of the new boot', async () => {
    const w = readWatch();
    return w.bootId.startsWith('bbbbbbbb') ? w : undefined;
  });
  t.same(watch0.guests.filter((g) => g.name.startsWith(RUN_PREFIX)).map((g) => g.status), ['pending', 'pending', 'pending'], 'every guest that ran is pending');

  // Nova restarts guest a: re-creates its secret, starts it.
  await defineSecret({ uuid: specs.a.secretUuid!, instanceUuid: specs.a.uuid, key: keyA, ephemeral: true });
  await virshOk(['start', specs.a.name]);
  await waitFor('a restarted', async () => readWatch().guests.find((g) => g.uuid === specs.a.uuid)?.status === 'restarted');
  const m2 = await metrics(second.url);
  t.equal(sample(m2, 'vtpm_guest_restarts_total', { outcome: 'restarted' }), 1, 'one restart counted');

  // The agent restarts in the middle of the watch: it continues, counting nothing twice.
  await second.agent.stop();
  const port3 = await freePort();
  const third = await startAgent(port3);
  t.teardown(() => third.agent.stop());
  await virshOk(['start', specs.c.name]);
  const failedStart = await virsh(['start', specs.b.name]);
  t.not(failedStart.code, 0, 'b cannot start without its secret');
  t.match(failedStart.stderr, /Secret not found/);
  t.match(await domState(specs.b.name), /shut off \(failed\)/);
  const final = await waitFor('b failed and c restarted', async () => {
    const w = readWatch();
    const b = w.guests.find((g) => g.uuid === specs.b.uuid);
    const c = w.guests.find((g) => g.uuid === specs.c.uuid);
    return b?.status === 'failed' && c?.status === 'restarted' ? w : undefined;
  });
  const byUuid = new Map(final.guests.map((g) => [g.uuid, g]));
  t.equal(byUuid.get(specs.a.uuid)?.status, 'restarted', 'a is still restarted after the agent restart');
  t.equal(byUuid.get(specs.b.uuid)?.reason, 'secret_missing');
  t.match(byUuid.get(specs.b.uuid)?.detail, specs.b.secretUuid!);
  const m3 = await metrics(third.url);
  t.equal(sample(m3, 'vtpm_guest_restarts_total', { outcome: 'restarted' }), 2, 'a (counted by the agent before) and c: the total survives the agent restart, nothing counted twice');
  t.equal(sample(m3, 'vtpm_guest_restarts_total', { outcome: 'failed' }), 1);
  t.equal(sample(m3, 'vtpm_guest_restart_failed', { instance_uuid: specs.b.uuid, domain: specs.b.name, reason: 'secret_missing' }), 1);
  t.equal(sample(m3, 'vtpm_guest_restart_failed', { domain: specs.a.name }), undefined, 'no failed series for a restarted guest');
  t.equal(sample(m3, 'vtpm_guest_restarts_pending', {}), 0);
  // Our metrics pass promtool's lint (names, units, help); other modules' lines are left out.
  const ourMetrics = m3
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?vtpm_(guest|guests|host_boot|nova_resume)/.test(l))
    .join('\n');
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: ourMetrics + '\n', encoding: 'utf8', timeout: 30_000 });
  t.equal(lint.status, 0, `promtool check metrics: ${lint.stderr}`);

  // libvirtd restarts under a running agent: the event stream dies and comes back by itself.
  t.equal(sample(m3, 'vtpm_guest_event_stream_up', {}), 1, 'event stream up');
  await restartLibvirtd();
  await waitFor(
    'event stream reconnected',
    async () => {
      const m = await metrics(third.url);
      return (sample(m, 'vtpm_guest_event_stream_restarts_total', {}) ?? 0) >= 1 && sample(m, 'vtpm_guest_event_stream_up', {}) === 1;
    },
    60_000,
    250,
  );
  t.pass('event stream restarted after libvirtd came back');

  // `check` (one-shot) reports the last reboot's outcome.
  const section = await new GuestRestartWatcher().checkOnce(
    extensionContext({ config: configSchema.parse({ stateDir, guests: { bootIdPath: bootIdFile, novaConfPath: path.join(work, 'nova.conf') } }), env: process.env, probes: [guestInventoryProbe as Probe] }),
  );
  t.equal(section.ok, false);
  t.match(section.summary, /2 restarted, 1 failed \(1 still down\)/);
  t.ok(section.table?.some((row) => row[0] === specs.b.name && /FAILED/.test(row[2]!) && /secret_missing/.test(row[3]!)), 'check lists b as failed with its reason');

  // End to end: a real Prometheus scrapes the agent with the shipped rule (its `for` shortened in
  // a generated copy only; expression, labels and annotations are the shipped ones).
  const shipped = parse(readFileSync(path.join(root, 'deploy/prometheus/rules/guests.rules.yml'), 'utf8')) as { groups: Array<{ rules: Array<Record<string, unknown>> }> };
  for (const g of shipped.groups) for (const r of g.rules) if (r.for) r.for = '2s';
  const ruleCopy = path.join(work, 'guests.rules.test-copy.yml');
  writeFileSync(ruleCopy, stringify(shipped));
  const prom = await startPrometheus({ targets: [`127.0.0.1:${port3}`], ruleFiles: [ruleCopy], scrapeInterval: '1s', evaluationInterval: '1s' });
  t.teardown(() => prom.stop());
  const alert = await waitFor(
    'VtpmGuestRestartFailed firing',
    async () => (await prom.alerts()).find((a) => a.labels.alertname === 'VtpmGuestRestartFailed' && a.state === 'firing' && a.labels.domain === specs.b.name),
    60_000,
    500,
  );
  t.equal(alert.labels.reason, 'secret_missing');
  t.equal(alert.labels.severity, 'P2');
  t.equal(alert.labels.instance_uuid, specs.b.uuid);
  t.match(alert.annotations.description, /hw:tpm_secret_security=host/);
  t.match(alert.annotations.runbook_url, /README\.md#vtpm-guest-restart-failed$/);
  const all = await prom.alerts();
  t.notOk(all.some((a) => a.labels.alertname === 'VtpmGuestRestartFailed' && (a.labels.domain === specs.a.name || a.labels.domain === specs.c.name)), 'no alert for restarted guests');
  t.notOk(all.some((a) => a.labels.alertname === 'VtpmGuestWatcherDown'), 'the agent target is up');
});

t.test('reboot: a user-mode guest nobody restarts fails at the deadline with secret_missing, and the detail names the cause', async (t) => {
  await waitForLibvirt();
  await cleanupGuests();
  const ownState = path.join(work, 'state-never-restarted');
  writeFileSync(bootIdFile, 'cccccccc-0000-4000-8000-000000000003\n');
  writeFileSync(path.join(work, 'nova.conf'), '[DEFAULT]\nresume_guests_state_on_host_boot = true\n');
  const spec: GuestSpec = { name: guestName('enc-never'), uuid: testUuid(), tpmVersion: '2.0', model: 'tpm-crb', secretUuid: testUuid(), nova: { instanceName: 'vm-d', project: 'demo', flavor: 'vtpm' } };
  await defineGuest(spec);
  await defineSecret({ uuid: spec.secretUuid!, instanceUuid: spec.uuid, key: randomBytes(32), ephemeral: true });
  await virshOk(['start', spec.name]);
  const before = await startAgent(await freePort(), { stateDir: ownState });
  await waitFor('snapshot with the guest', async () => {
    try {
      const snap = JSON.parse(readFileSync(path.join(ownState, 'guests', 'snapshot.json'), 'utf8')) as { guests: Array<{ uuid: string }> };
      return snap.guests.some((g) => g.uuid === spec.uuid);
    } catch {
      return false;
    }
  });
  await before.agent.stop();

  await restartLibvirtd();
  await virsh(['destroy', spec.name]);
  writeFileSync(bootIdFile, 'dddddddd-0000-4000-8000-000000000004\n');
  const port = await freePort();
  const after = await startAgent(port, { stateDir: ownState, deadlineSeconds: 5 });
  t.teardown(() => after.agent.stop());
  const watchFile = path.join(ownState, 'guests', 'watch.json');
  const decided = await waitFor(
    'the guest failed at the deadline',
    async () => {
      const w = JSON.parse(readFileSync(watchFile, 'utf8')) as Watch;
      const g = w.guests.find((x) => x.uuid === spec.uuid);
      return g?.status === 'failed' ? g : undefined;
    },
    60_000,
    250,
  );
  t.equal(decided.attempted, false, 'nobody tried to start it');
  t.equal(decided.reason, 'secret_missing');
  t.match(decided.detail, spec.secretUuid!);
  t.match(decided.detail, /secret mode "user".*hw:tpm_secret_security=host/, 'the detail names the user secret mode behind it, and the remedy');
  const m = await metrics(after.url);
  t.equal(sample(m, 'vtpm_guest_restart_failed', { instance_uuid: spec.uuid, reason: 'secret_missing' }), 1);
});
