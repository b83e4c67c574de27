import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { EventStream, type LifecycleEvent } from '../../src/guests/events.js';
import { GUEST_INVENTORY } from '../../src/guests/types.js';
import { GuestRestartWatcher } from '../../src/guests/watcher.js';
import { guestInventoryProbe } from '../../src/probes/guest-inventory.js';
import type { Probe } from '../../src/probes/types.js';
import { extensionContext } from '../fixtures/extension-context.js';

const log = pino({ level: 'silent' });

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpmtest-guests-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fake virsh (fault injection): prints one lifecycle event, then dies. */
function dyingVirsh(dir: string): string {
  const file = path.join(dir, 'virsh');
  writeFileSync(file, `#!/bin/sh\necho "2026-11-28 17:40:00.000+0000: event 'lifecycle' for domain 'vm1': Started Booted"\necho "error: failed to connect to the hypervisor" >&2\nexit 1\n`);
  chmodSync(file, 0o755);
  return file;
}

t.test('the event stream is restarted with backoff when virsh dies, and stops cleanly', async (t) => {
  const dir = tempDir(t);
  const events: LifecycleEvent[] = [];
  let connects = 0;
  const stream = new EventStream({
    virshPath: dyingVirsh(dir),
    uri: 'qemu:///system',
    env: {},
    log,
    onEvent: (e) => events.push(e),
    onConnect: () => (connects += 1),
    minBackoffMs: 20,
    maxBackoffMs: 80,
  });
  stream.start();
  const until = Date.now() + 20_000;
  while (stream.restarts < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await stream.stop();
  t.ok(stream.restarts >= 3, `restarted ${stream.restarts} times`);
  t.ok(events.length >= 3, 'events from every incarnation reach the consumer');
  t.equal(events[0]?.domain, 'vm1');
  t.equal(connects, 0, 'a virsh that dies at once never counts as connected');
  const after = stream.restarts;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(stream.restarts, after, 'no restart after stop');
});

t.test('a virsh that dies while the event loop is busy never counts as connected', async (t) => {
  const dir = tempDir(t);
  // Prints an event, then dies while the loop is blocked (not before the event is read: then its
  // exit would be in the same poll batch and seen anyway).
  const virsh = path.join(dir, 'virsh');
  writeFileSync(virsh, `#!/bin/sh\necho "event 'lifecycle' for domain 'vm1': Started Booted"\nsleep 0.2\nexit 1\n`);
  chmodSync(virsh, 0o755);
  let connects = 0;
  let blocked = false;
  const stream = new EventStream({
    virshPath: virsh,
    uri: 'qemu:///system',
    env: {},
    log,
    // Blocks the loop past the settle time right after the event, while virsh exits: the settle
    // timer and the exit are then due together, as under CPU load (deterministic, no load needed).
    onEvent: () => {
      if (blocked) return;
      blocked = true;
      const until = performance.now() + 600;
      while (performance.now() < until);
    },
    onConnect: () => (connects += 1),
    minBackoffMs: 5000,
  });
  stream.start();
  const until = Date.now() + 10_000;
  while (!blocked && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 400));
  await stream.stop();
  t.ok(blocked, 'the event arrived and the loop was blocked');
  t.equal(connects, 0, 'not connected: its exit was pending when the settle time was up');
  t.equal(stream.connected, false);
});

t.test('a hanging virsh event child is killed at stop', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'virsh');
  writeFileSync(file, '#!/bin/sh\nexec sleep 600\n');
  chmodSync(file, 0o755);
  let connects = 0;
  const stream = new EventStream({ virshPath: file, uri: 'x', env: {}, log, onEvent: () => undefined, onConnect: () => (connects += 1) });
  stream.start();
  await new Promise((r) => setTimeout(r, 800));
  t.equal(stream.connected, true, 'a child that stays up is connected');
  t.equal(connects, 1, 'and the consumer is told to resync');
  await stream.stop();
  t.equal(stream.connected, false);
});

t.test('a virsh event child printing a line past the cap is killed and restarted; events around it still arrive', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'virsh');
  // One event, then 1 MB without a newline, then it would sleep: only the cap ends it.
  writeFileSync(file, `#!/bin/sh\necho "event 'lifecycle' for domain 'vm1': Started Booted"\nhead -c 1000000 /dev/zero | tr '\\000' x\nexec sleep 600\n`);
  chmodSync(file, 0o755);
  const events: LifecycleEvent[] = [];
  const stream = new EventStream({ virshPath: file, uri: 'x', env: {}, log, onEvent: (e) => events.push(e), minBackoffMs: 20, maxBackoffMs: 40 });
  stream.start();
  const until = Date.now() + 20_000;
  while (stream.restarts < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  await stream.stop();
  t.ok(stream.restarts >= 2, `killed at the cap and restarted (${stream.restarts} restarts; a sleeping child is never restarted otherwise)`);
  t.ok(events.length >= 2 && events.every((e) => e.domain === 'vm1'), 'the event before the flood arrives from each incarnation');
});

t.test('watcher: corrupt snapshot is moved aside, unreachable libvirt is reported, no crash', async (t) => {
  const dir = tempDir(t);
  const stateDir = path.join(dir, 'state');
  mkdirSync(path.join(stateDir, 'guests'), { recursive: true });
  writeFileSync(path.join(stateDir, 'guests', 'snapshot.json'), '{"version":1,"bootId":"x","gue');
  writeFileSync(path.join(dir, 'boot_id'), 'cccccccc-0000-4000-8000-000000000003\n');
  const config = configSchema.parse({
    stateDir,
    libvirt: { virshPath: dyingVirsh(dir) },
    guests: { bootIdPath: path.join(dir, 'boot_id'), eventWatcher: false, novaConfPath: '' },
  });
  const watcher = new GuestRestartWatcher();
  const controller = new AbortController();
  await watcher.start(extensionContext({ config, env: {}, signal: controller.signal }));
  t.same(watcher.readiness(), { ready: true }, 'ready at once: libvirt is read in the background');
  await watcher.refreshSoon();
  const status = watcher.status();
  t.match(status.summary, /error: libvirt/);
  t.equal(status.ok, false);
  const files = readdirSync(path.join(stateDir, 'guests'));
  t.ok(files.some((f) => f.startsWith('snapshot.json.corrupt-')), 'corrupt snapshot moved aside');
  controller.abort();
  await watcher.stop();
});

t.test('watcher: an unreadable boot id is an error in status, not a crash', async (t) => {
  const dir = tempDir(t);
  const config = configSchema.parse({
    stateDir: path.join(dir, 'state'),
    libvirt: { virshPath: dyingVirsh(dir) },
    guests: { bootIdPath: path.join(dir, 'missing'), eventWatcher: false, novaConfPath: '' },
  });
  const watcher = new GuestRestartWatcher();
  await watcher.start(extensionContext({ config, env: {} }));
  t.match(watcher.status().summary, /boot id cannot be read/);
  const check = await watcher.checkOnce(extensionContext({ config, env: {} }));
  t.equal(check.ok, false);
  t.match(check.summary, /error/);
  await watcher.stop();
});

const OLD_BOOT = 'aaaaaaaa-0000-4000-8000-000000000001';
const NEW_BOOT = 'bbbbbbbb-0000-4000-8000-000000000002';
const FIXTURE_UUID = '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f';

/**
 * A fake virsh that answers a batch script: echoes the markers and `version`, and when `withDomain` lists the
 * fixture vTPM domain (nova-1.1-host.xml) as shut off (destroyed), i.e. still pending after a reboot.
 */
function batchVirsh(dir: string, opts: { delaySeconds: number; withDomain: boolean }): string {
  const file = path.join(dir, 'virsh-batch');
  const xml = new URL('../fixtures/guests/nova-1.1-host.xml', import.meta.url).pathname;
  const domain = opts.withDomain
    ? `    "list --all --uuid") echo ${FIXTURE_UUID} ;;
    "domstats --state") printf "Domain: 'instance-0000002a'\\n  state.state=5\\n  state.reason=2\\n\\n" ;;
    "dumpxml "*) cat '${xml}' ;;
`
    : '';
  writeFileSync(
    file,
    `#!/bin/sh
sleep ${opts.delaySeconds}
for a; do last=$a; done
printf '%s\\n' "$last" | sed 's/; /\\n/g' | while IFS= read -r cmd; do
  case "$cmd" in
    "echo "*) printf '%s' "\${cmd#echo }" ;;
    version) printf 'Compiled against library: libvirt 9.0.0\\nUsing library: libvirt 9.0.0\\n' ;;
${domain}  esac
done
`,
  );
  chmodSync(file, 0o755);
  return file;
}

/** The previous boot's snapshot: the fixture guest and one that will be gone. */
function writeOldSnapshot(stateDir: string): string {
  const file = path.join(stateDir, 'guests', 'snapshot.json');
  mkdirSync(path.dirname(file), { recursive: true });
  const guest = (uuid: string, name: string) => ({ uuid, name, instanceUuid: uuid, secretMode: 'host', encryptionSecret: null });
  writeFileSync(file, JSON.stringify({ version: 1, bootId: OLD_BOOT, bootTime: null, takenAt: Date.now() - 60_000, guests: [guest(FIXTURE_UUID, 'instance-0000002a'), guest('00000000-0000-4000-8000-0000000000ee', 'instance-000000ee')] }));
  return file;
}

function watcherConfig(dir: string, stateDir: string, virshPath: string) {
  writeFileSync(path.join(dir, 'boot_id'), `${NEW_BOOT}\n`);
  return configSchema.parse({
    stateDir,
    libvirt: { virshPath },
    guests: { bootIdPath: path.join(dir, 'boot_id'), eventWatcher: false, novaConfPath: '', restartDeadlineSeconds: 600, swtpmLogDir: path.join(dir, 'swtpm-logs') },
  });
}

t.test('watcher: the previous boot snapshot is never overwritten before the watch is saved; initialise is retried', async (t) => {
  const dir = tempDir(t);
  const stateDir = path.join(dir, 'state');
  const snapshotFile = writeOldSnapshot(stateDir);
  // A watch file that cannot be read (EISDIR: not ENOENT, so not "absent") fails initialise after the boot id is known.
  const watchFile = path.join(stateDir, 'guests', 'watch.json');
  mkdirSync(watchFile);
  const config = watcherConfig(dir, stateDir, batchVirsh(dir, { delaySeconds: 0, withDomain: false }));
  const watcher = new GuestRestartWatcher();
  await watcher.start(extensionContext({ config }));
  await watcher.refreshSoon();
  await watcher.refreshSoon();
  t.match(watcher.status().summary, /error/, 'the initialise failure is reported');
  t.equal(JSON.parse(readFileSync(snapshotFile, 'utf8')).bootId, OLD_BOOT, 'refreshes leave the previous boot snapshot alone');

  // The state dir is repaired: the next refresh initialises, saves the watch, then snapshots this boot.
  rmSync(watchFile, { recursive: true });
  await watcher.refreshSoon();
  const watch = JSON.parse(readFileSync(watchFile, 'utf8'));
  t.equal(watch.bootId, NEW_BOOT);
  t.equal(watch.previousBootId, OLD_BOOT, 'the reboot watch is built from the previous boot snapshot');
  t.same(watch.guests.map((g: { status: string }) => g.status), ['gone', 'gone'], 'and evaluated against libvirt');
  t.equal(JSON.parse(readFileSync(snapshotFile, 'utf8')).bootId, NEW_BOOT, 'only now is this boot snapshotted');
  t.notMatch(watcher.status().summary, /error/, 'the initialise error clears once it succeeds');
  await watcher.stop();
});

t.test('watcher: a refresh in flight at stop decides, but leaves no deadline timer behind', async (t) => {
  const dir = tempDir(t);
  const stateDir = path.join(dir, 'state');
  writeOldSnapshot(stateDir);
  // virsh answers after 0.5 s, so stop() begins while the first refresh waits for it.
  const config = watcherConfig(dir, stateDir, batchVirsh(dir, { delaySeconds: 0.5, withDomain: true }));
  const watcher = new GuestRestartWatcher();
  const internals = watcher as unknown as { deadlineTimer: NodeJS.Timeout | undefined };
  const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timeouts();
  let stopBegan = false;
  const decided: string[] = [];
  watcher.onTransitions = (transitions) => {
    if (stopBegan) decided.push(...transitions.map((x) => `${x.name}:${x.outcome}`));
  };
  await watcher.start(extensionContext({ config }));
  t.ok(internals.deadlineTimer, 'a pending watch arms the deadline at start');
  stopBegan = true;
  await watcher.stop();
  t.same(decided, ['instance-000000ee:gone'], 'the in-flight refresh finished during stop and changed the watch (one guest still pending)');
  t.equal(internals.deadlineTimer, undefined, 'no deadline timer after stop');
  t.equal(timeouts(), before, 'no timer of the watcher is left active');
  const watch = JSON.parse(readFileSync(path.join(stateDir, 'guests', 'watch.json'), 'utf8'));
  t.same(watch.guests.map((g: { status: string }) => g.status), ['pending', 'gone'], 'the decision was still saved');
});

/**
 * A watcher after the previous boot (fixture guest pending), started on a context whose refresh
 * runs the real inventory probe, counting its runs: the watcher has no virsh inventory of its own.
 */
async function countedWatcher(t: { teardown(fn: () => void): void }, signal?: AbortSignal) {
  const dir = tempDir(t);
  const stateDir = path.join(dir, 'state');
  writeOldSnapshot(stateDir);
  const config = watcherConfig(dir, stateDir, batchVirsh(dir, { delaySeconds: 0, withDomain: true }));
  const counter = { runs: 0 };
  const probe = { ...guestInventoryProbe, run: (ctx, results) => (counter.runs++, guestInventoryProbe.run(ctx, results)) } as Probe;
  const ctx = extensionContext({ config, probes: [probe], signal });
  const watcher = new GuestRestartWatcher();
  const internals = watcher as unknown as { onEvent(e: LifecycleEvent): void; runner: { idle(): Promise<void> } };
  await watcher.start(ctx);
  await internals.runner.idle();
  return { dir, stateDir, counter, probe, ctx, watcher, internals };
}

t.test('watcher: an event refreshes the shared inventory once, through the probe, into the state', async (t) => {
  const { counter, ctx, watcher, internals } = await countedWatcher(t);
  const seen = ctx.state.get(GUEST_INVENTORY);
  t.ok(seen?.ok, "the watcher's first look put the inventory into the agent's state");
  t.equal(counter.runs, 1, 'one probe run for it');

  // A lifecycle event of a pending guest: exactly one more inventory run, and the state holds it.
  internals.onEvent({ timestamp: Date.now(), domain: 'instance-0000002a', event: 'Started', detail: 'Booted' });
  await internals.runner.idle();
  t.equal(counter.runs, 2, 'the event made one probe run; nothing else reads libvirt');
  const after = ctx.state.get(GUEST_INVENTORY);
  t.ok(after?.data && seen?.data && after !== seen && after.data.collectedAt >= seen.data.collectedAt, 'the state holds the fresh inventory');
  await watcher.stop();
  t.equal(counter.runs, 2, 'stop reads no libvirt');
});

t.test('watcher: a failed inventory result is the error in status; the final snapshot at stop comes from the state', async (t) => {
  const controller = new AbortController();
  const { dir, stateDir, counter, probe, ctx, watcher } = await countedWatcher(t, controller.signal);
  const snapshotFile = path.join(stateDir, 'guests', 'snapshot.json');
  const first = JSON.parse(readFileSync(snapshotFile, 'utf8')) as { bootId: string; takenAt: number };
  t.equal(first.bootId, NEW_BOOT, 'this boot is snapshotted from the shared inventory');

  // The probe's own schedule runs between the watcher's refreshes: a newer inventory in the state.
  await new Promise((r) => setTimeout(r, 20));
  await ctx.scheduler.runCycle([probe]);
  const runs = counter.runs;
  // The agent stops: its signal aborts before the extensions stop, so no refresh can run.
  controller.abort(new Error('agent stopping'));
  t.equal(await ctx.refresh(GUEST_INVENTORY), undefined, 'no refresh while the agent stops');
  await watcher.stop();
  t.equal(counter.runs, runs, 'the final snapshot read no libvirt');
  const last = JSON.parse(readFileSync(snapshotFile, 'utf8')) as { takenAt: number };
  t.ok(last.takenAt > first.takenAt, 'but was written from the newer inventory in the state');

  // A probe failure becomes the watcher's error, as a libvirt read failure did.
  const broken = extensionContext({ config: watcherConfig(dir, stateDir, dyingVirsh(dir)), probes: [probe] });
  const second = new GuestRestartWatcher();
  await second.start(broken);
  await second.refreshSoon();
  t.match(second.status().summary, /error: libvirt/);
  t.equal(broken.state.get(GUEST_INVENTORY)?.ok, false, 'the same failure is in the state');
  await second.stop();
});

t.test('watcher: a snapshot tick uses the probe\'s recent scheduled inventory; events still read libvirt', async (t) => {
  const { stateDir, counter, probe, ctx, watcher, internals } = await countedWatcher(t);
  const snapshotFile = path.join(stateDir, 'guests', 'snapshot.json');
  const first = JSON.parse(readFileSync(snapshotFile, 'utf8')) as { takenAt: number };
  // The probe's own schedule brings a newer inventory; then the periodic snapshot ticks.
  await new Promise((r) => setTimeout(r, 20));
  await ctx.scheduler.runCycle([probe]);
  const runs = counter.runs;
  const tick = watcher as unknown as { runner: { trigger(): Promise<void> } };
  await tick.runner.trigger();
  t.equal(counter.runs, runs, 'the snapshot tick made no probe run of its own');
  const second = JSON.parse(readFileSync(snapshotFile, 'utf8')) as { takenAt: number };
  t.ok(second.takenAt > first.takenAt, 'and wrote the snapshot from the scheduled inventory');

  // An event needs the guest's state now: a new read, even with a recent inventory in the state.
  internals.onEvent({ timestamp: Date.now(), domain: 'instance-0000002a', event: 'Started', detail: 'Booted' });
  await internals.runner.idle();
  t.equal(counter.runs, runs + 1, 'the event made one probe run');

  // An inventory older than the snapshot interval is not reused (even one the watcher has not seen).
  (watcher as unknown as { lastInventory: unknown }).lastInventory = null;
  const old = ctx.state.get(GUEST_INVENTORY)!;
  ctx.state.set({ ...old, data: { ...old.data!, collectedAt: Date.now() - ctx.config.guests.snapshotIntervalSeconds * 1000 - 1000 } });
  await tick.runner.trigger();
  t.equal(counter.runs, runs + 2, 'a stale inventory in the state: the tick reads libvirt');
  await watcher.stop();
});
