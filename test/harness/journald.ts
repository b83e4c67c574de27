/**
 * A real systemd-journald (Debian package systemd) without systemd as PID 1: journald runs in a
 * private journal namespace (`systemd-journald <ns>`, sockets under /run/systemd/journal.<ns>/,
 * files under /var/log/journal/<machine-id>.<ns>), so it never touches the host's journal, and
 * `journalctl --namespace=<ns>` reads what it stored. streamFor() opens a stdout stream the way
 * systemd does for a service (StandardOutput=journal): level prefixes parsed, JOURNAL_STREAM set.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, fstatSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { requireCommands } from './components.js';
import { waitFor } from './agent.js';

export const JOURNALD = '/lib/systemd/systemd-journald';

export interface JournalEntry {
  MESSAGE: string;
  PRIORITY: string;
  SYSLOG_IDENTIFIER?: string;
}

export interface Journald {
  namespace: string;
  /** A connected stdout stream with the given identifier, and the JOURNAL_STREAM value that names it. */
  streamFor(identifier: string): Promise<{ socket: net.Socket; journalStream: string }>;
  /** `journalctl --namespace=<ns> -o json [args]` parsed. */
  entries(args?: string[]): JournalEntry[];
  stop(): Promise<void>;
}

export async function startJournald(): Promise<Journald> {
  requireCommands('journalctl', JOURNALD);
  const namespace = `vtpmtest${randomBytes(4).toString('hex')}`;
  const socketPath = `/run/systemd/journal.${namespace}/stdout`;
  const child: ChildProcess = spawn(JOURNALD, [namespace], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  await waitFor(`journald ${namespace} listening`, () => {
    if (exited) throw new Error(`systemd-journald exited: ${stderr}`);
    return existsSync(socketPath);
  }, 15_000, 50);
  const machineId = readFileSync('/etc/machine-id', 'utf8').trim();
  return {
    namespace,
    streamFor: (identifier) =>
      new Promise((resolve, reject) => {
        const socket = net.connect(socketPath, () => {
          // The stdout stream header (src/journal/journald-stream.c): identifier, unit id,
          // default priority, level prefix on, forward to syslog/kmsg/console off.
          socket.write(`${identifier}\n\n6\n1\n0\n0\n0\n`);
          const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
          const st = fstatSync(fd, { bigint: true });
          resolve({ socket, journalStream: `${st.dev}:${st.ino}` });
        });
        socket.once('error', reject);
      }),
    entries: (args = []) =>
      execFileSync('journalctl', [`--namespace=${namespace}`, '-o', 'json', '--no-pager', ...args], { encoding: 'utf8', timeout: 30_000 })
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as JournalEntry),
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        await waitFor('journald to exit', () => exited, 10_000, 50).catch(() => child.kill('SIGKILL'));
      }
      for (const dir of [`/run/systemd/journal.${namespace}`, `/var/log/journal/${machineId}.${namespace}`, `/run/log/journal/${machineId}.${namespace}`]) {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
