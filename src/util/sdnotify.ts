import { createRequire } from 'node:module';

/**
 * sd_notify(3) for `Type=notify` units: READY=1, WATCHDOG=1, STOPPING=1. Node has no unix
 * datagram sockets, so this uses the optional `unix-dgram` addon; without NOTIFY_SOCKET (not
 * under systemd) or without the addon every call is a no-op.
 */
interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', listener: (err: Error) => void): void;
}

type UnixDgram = { createSocket(type: 'unix_dgram'): DgramSocket };

function loadAddon(): UnixDgram | null {
  try {
    return createRequire(import.meta.url)('unix-dgram') as UnixDgram;
  } catch {
    return null;
  }
}

export class SystemdNotifier {
  private readonly path: string | null;
  private readonly addon: UnixDgram | null;
  private watchdogTimer: NodeJS.Timeout | undefined;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    const socket = env.NOTIFY_SOCKET;
    // Abstract sockets start with '@'; unix-dgram wants a NUL byte there.
    this.path = socket ? (socket.startsWith('@') ? `\0${socket.slice(1)}` : socket) : null;
    this.addon = this.path ? loadAddon() : null;
  }

  get active(): boolean {
    return this.path !== null && this.addon !== null;
  }

  notify(state: string): Promise<void> {
    if (!this.path || !this.addon) return Promise.resolve();
    const addon = this.addon;
    const path = this.path;
    return new Promise((resolve) => {
      const socket = addon.createSocket('unix_dgram');
      socket.on('error', () => resolve());
      const buf = Buffer.from(state);
      socket.send(buf, 0, buf.length, path, () => {
        socket.close();
        resolve();
      });
    });
  }

  /** Pings the watchdog at half of WATCHDOG_USEC while `alive()` holds. */
  startWatchdog(env: NodeJS.ProcessEnv, alive: () => boolean): void {
    const usec = Number.parseInt(env.WATCHDOG_USEC ?? '', 10);
    if (!Number.isFinite(usec) || usec <= 0) return;
    const pid = Number.parseInt(env.WATCHDOG_PID ?? '', 10);
    if (Number.isFinite(pid) && pid !== process.pid) return;
    this.watchdogTimer = setInterval(() => {
      if (alive()) void this.notify('WATCHDOG=1');
    }, Math.max(1000, usec / 2000));
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.watchdogTimer);
  }
}
