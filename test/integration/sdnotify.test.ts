import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { freePort, spawnCli, waitFor } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { requireLibvirt } from '../harness/libvirt.js';

requireLibvirt();
// The agent sends through systemd's own systemd-notify (no native addon); python3 stands in for
// PID 1's notify socket here. Under a real systemd: scripts/package-test.sh.
requireCommands('systemd-notify', 'python3');

/** A datagram socket like PID 1's: one line on stdout per message (ancillary fds are dropped, which closes them: the sender's barrier completes). */
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", " "), flush=True)
`;

/** A bound notify socket in a fresh directory, and every message it receives. */
async function notifySocket(t: { teardown(fn: () => void): void }, name: string): Promise<{ socketPath: string; dir: string; messages: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `vtpm-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = path.join(dir, 'notify.sock');
  const lines: string[] = [];
  const receiver = spawn('python3', ['-c', RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => receiver.kill('SIGKILL'));
  receiver.stdout.setEncoding('utf8');
  let buffered = '';
  receiver.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    // BARRIER=1 is systemd-notify's wait for PID 1 (sd_notify_barrier), not a state.
    lines.push(...parts.filter((line) => line !== 'BARRIER=1'));
  });
  await waitFor('the notify socket bound', () => lines.includes('bound'), 10_000, 20);
  lines.splice(lines.indexOf('bound'), 1);
  return { socketPath, dir, messages: lines };
}

t.test('under systemd Type=notify: READY=1, WATCHDOG=1 while alive, STOPPING=1 on SIGTERM', async (t) => {
  const { socketPath, dir, messages } = await notifySocket(t, 'notify');
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
  // READY carries MAINPID: the sender is systemd-notify, a child of the agent (NotifyAccess=all).
  await waitFor('READY=1', () => messages.includes(`MAINPID=${child.pid} READY=1`) || messages.includes(`READY=1 MAINPID=${child.pid}`), 60_000, 50);
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.equal(res.status, 200, 'READY is sent once the server answers');
  await waitFor('two watchdog pings', () => messages.filter((m) => m === 'WATCHDOG=1').length >= 2, 10_000, 100);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.ok(messages.includes('STOPPING=1'));
  const ready = messages.findIndex((m) => m.includes('READY=1'));
  t.ok(ready >= 0 && ready < messages.indexOf('STOPPING=1'), 'READY before STOPPING');
});

t.test('without NOTIFY_SOCKET nothing is sent and nothing fails', async (t) => {
  const { SystemdNotifier } = await import('../../src/util/sdnotify.js');
  const { socketPath, messages } = await notifySocket(t, 'notify-none');
  // The agent's own environment names the socket: a notifier must read only the env it is given.
  const saved = process.env.NOTIFY_SOCKET;
  process.env.NOTIFY_SOCKET = socketPath;
  t.teardown(() => (saved === undefined ? delete process.env.NOTIFY_SOCKET : (process.env.NOTIFY_SOCKET = saved)));
  const silent = new SystemdNotifier({ WATCHDOG_USEC: '2000000' });
  t.equal(silent.active, false);
  t.equal(await silent.notify('READY=1'), null);
  silent.startWatchdog(() => true, (reason) => t.fail(reason));
  t.teardown(() => silent.stopWatchdog());
  // The control: the same socket does receive from a notifier that is told about it.
  t.equal(await new SystemdNotifier({ NOTIFY_SOCKET: socketPath, PATH: process.env.PATH }).notify('STATUS=control'), null);
  await waitFor('the control message', () => messages.includes('STATUS=control'), 5_000, 20);
  await new Promise((r) => setTimeout(r, 1_500));
  t.same(messages, ['STATUS=control'], 'nothing but the control message arrived: no READY=1, no watchdog ping');
});
