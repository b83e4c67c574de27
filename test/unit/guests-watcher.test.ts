import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { EventStream, type LifecycleEvent } from '../../src/guests/events.js';
import { GuestRestartWatcher } from '../../src/guests/watcher.js';
import { HostState } from '../../src/state.js';

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
  await watcher.start({ config, log, hostPath: (p) => p, env: {}, state: new HostState(), signal: controller.signal });
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
  await watcher.start({ config, log, hostPath: (p) => p, env: {}, state: new HostState(), signal: new AbortController().signal });
  t.match(watcher.status().summary, /boot id cannot be read/);
  const check = await watcher.checkOnce({ config, log, hostPath: (p) => p, env: {}, state: new HostState(), signal: new AbortController().signal });
  t.equal(check.ok, false);
  t.match(check.summary, /error/);
  await watcher.stop();
});
