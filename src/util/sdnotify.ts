import { runCommand, SMALL_OUTPUT_BYTES } from './exec.js';

/** How long one notification may take, the service manager's acknowledgement included. */
const NOTIFY_TIMEOUT_MS = 5000;

/**
 * sd_notify(3) for `Type=notify` units: READY=1, WATCHDOG=1, STOPPING=1. Node has no unix datagram
 * sockets, and a native addon would have to be compiled for each Node ABI on each host; so each
 * message is sent by systemd's own `systemd-notify`. The unit therefore sets NotifyAccess=all
 * (the sender is our child, not the main process). systemd-notify waits until PID 1 has processed
 * the message (sd_notify_barrier, systemd ≥ 246), so the short-lived sender cannot exit before
 * systemd attributed it to the unit. Without NOTIFY_SOCKET (not under systemd) every call is a no-op.
 */
export class SystemdNotifier {
  private readonly env: NodeJS.ProcessEnv;
  private watchdogTimer: NodeJS.Timeout | undefined;
  /** A WATCHDOG=1 still being delivered: the next tick waits for it rather than piling up senders. */
  private pinging = false;

  constructor(env: NodeJS.ProcessEnv = process.env) {
    this.env = env;
  }

  /** True when a service manager asked for notifications. */
  get active(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /**
   * Sends one notification; resolves to null when it was delivered (or there is nobody to tell),
   * else to the reason it was not. Never throws: a lost notification must not stop the agent.
   */
  async notify(state: string, options: { mainPid?: boolean; timeoutMs?: number } = {}): Promise<string | null> {
    if (!this.active) return null;
    const args = [...(options.mainPid ? [`--pid=${process.pid}`] : []), state];
    try {
      // Only what systemd-notify needs: the socket, and PATH to find it.
      const env = { PATH: this.env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: this.env.NOTIFY_SOCKET };
      const result = await runCommand('systemd-notify', args, { timeoutMs: options.timeoutMs ?? NOTIFY_TIMEOUT_MS, maxOutputBytes: SMALL_OUTPUT_BYTES, env });
      return result.exitCode === 0 ? null : `systemd-notify ${state} exited ${result.exitCode}: ${result.stderr.trim()}`;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** Pings the watchdog at half of WATCHDOG_USEC while `alive()` holds. */
  startWatchdog(alive: () => boolean, onError: (reason: string) => void): void {
    const usec = Number.parseInt(this.env.WATCHDOG_USEC ?? '', 10);
    if (!this.active || !Number.isFinite(usec) || usec <= 0) return;
    const pid = Number.parseInt(this.env.WATCHDOG_PID ?? '', 10);
    if (Number.isFinite(pid) && pid !== process.pid) return;
    this.watchdogTimer = setInterval(() => {
      if (!alive() || this.pinging) return;
      this.pinging = true;
      void this.notify('WATCHDOG=1')
        .then((reason) => reason && onError(reason))
        .finally(() => (this.pinging = false));
    }, Math.max(1000, usec / 2000));
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.watchdogTimer);
  }
}
