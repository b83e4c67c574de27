import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort, spawnCli, waitFor } from '../harness/agent.js';
import { requireLibvirt } from '../harness/libvirt.js';

requireLibvirt();
type Socket = { bind(path: string): void; on(event: 'message', cb: (msg: Buffer) => void): void; close(): void };
const unixDgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram', cb?: (msg: Buffer) => void): Socket };

/** A bound notify socket in a fresh directory, and every message it receives. */
function notifySocket(t: { teardown(fn: () => void): void }, name: string): { socketPath: string; dir: string; messages: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `vtpm-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'notify.sock');
  const messages: string[] = [];
  const socket = unixDgram.createSocket('unix_dgram', (msg) => messages.push(msg.toString()));
  socket.bind(socketPath);
  t.teardown(() => socket.close());
  return { socketPath, dir, messages };
}

t.test('under systemd Type=notify: READY=1, WATCHDOG=1 while alive, STOPPING=1 on SIGTERM', async (t) => {
  const { socketPath, dir, messages } = notifySocket(t, 'notify');
  const port = await freePort();
  const child = spawnCli(['serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${dir}/state`, '--set', 'emulation.enabled=false'], {
    ...process.env,
    VTPM_AGENT_CONFIG: '/dev/null',
    NOTIFY_SOCKET: socketPath,
    // 2 s watchdog: the agent pings every second.
    WATCHDOG_USEC: '2000000',
  });
  t.teardown(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor('READY=1', () => messages.includes('READY=1'), 60_000, 50);
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(res.status, 200, 'READY is sent once the server answers');
  await waitFor('two watchdog pings', () => messages.filter((m) => m === 'WATCHDOG=1').length >= 2, 10_000, 100);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.ok(messages.includes('STOPPING=1'));
  t.ok(messages.indexOf('READY=1') < messages.indexOf('STOPPING=1'));
});

t.test('without NOTIFY_SOCKET nothing is sent and nothing fails', async (t) => {
  const { SystemdNotifier } = await import('../../src/util/sdnotify.js');
  const { socketPath, messages } = notifySocket(t, 'notify-none');
  // The agent's own environment names the socket: a notifier must read only the env it is given.
  const saved = process.env.NOTIFY_SOCKET;
  process.env.NOTIFY_SOCKET = socketPath;
  t.teardown(() => (saved === undefined ? delete process.env.NOTIFY_SOCKET : (process.env.NOTIFY_SOCKET = saved)));
  const silent = new SystemdNotifier({ WATCHDOG_USEC: '2000000' });
  t.equal(silent.active, false);
  await silent.notify('READY=1');
  silent.startWatchdog({ WATCHDOG_USEC: '2000000' }, () => true);
  t.teardown(() => silent.stopWatchdog());
  // The control: the same socket does receive from a notifier that is told about it.
  await new SystemdNotifier({ NOTIFY_SOCKET: socketPath }).notify('STATUS=control');
  await waitFor('the control message', () => messages.includes('STATUS=control'), 5_000, 20);
  await new Promise((r) => setTimeout(r, 1_500));
  t.same(messages, ['STATUS=control'], 'nothing but the control message arrived: no READY=1, no watchdog ping');
});
