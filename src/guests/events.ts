import type { Logger } from 'pino';
import { spawnLongRunning, type LongRunningChild } from '../util/long-running.js';

export interface LifecycleEvent {
  /** Unix ms from virsh's `--timestamp` prefix; null when absent. */
  timestamp: number | null;
  domain: string;
  /** e.g. `Started`, `Stopped`. */
  event: string;
  /** e.g. `Booted`, `Failed`, `Destroyed`. */
  detail: string;
}

/** How long a fresh `virsh event` child must live to count as connected. */
const SETTLE_MS = 300;

/**
 * Output cap of the stream: the longest line (an event line is ~150 B). A virsh printing past it
 * without a newline is killed and restarted like one that died, so it never grows our memory.
 */
export const MAX_EVENT_LINE_BYTES = 64 * 1024;

const LINE = /^(?:(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{4})?: )?event 'lifecycle' for domain '(.+)': (\S+)(?: (.*))?$/;

/** One line of `virsh event --all --loop --timestamp`; null for other events and noise. */
export function parseEventLine(line: string): LifecycleEvent | null {
  const m = LINE.exec(line.trim());
  if (!m) return null;
  let timestamp: number | null = null;
  if (m[1]) {
    const tz = m[2] ? `${m[2].slice(0, 3)}:${m[2].slice(3)}` : 'Z';
    const t = Date.parse(`${m[1].replace(' ', 'T')}${tz}`);
    timestamp = Number.isNaN(t) ? null : t;
  }
  return { timestamp, domain: m[3]!, event: m[4]!, detail: (m[5] ?? '').trim() };
}

export interface EventStreamOptions {
  virshPath: string;
  uri: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  onEvent(event: LifecycleEvent): void;
  /** Called when the stream (re)connects, so the consumer can resync what it missed. */
  onConnect?(): void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * A supervised `virsh -r event --all --loop --timestamp` child. It dies when libvirtd restarts;
 * it is then restarted with exponential backoff (reset once a child has lived a minute), and the
 * consumer resyncs on every reconnect since events may have been missed in between.
 */
export class EventStream {
  private child: LongRunningChild | undefined;
  /** Aborted by stop(): ends a child being spawned as well as a running one. */
  private stopping = new AbortController();
  /** The current child's whole life, from spawn to the restart decision; stop() waits for it. */
  private running: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private backoffMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  restarts = 0;
  connected = false;

  constructor(private readonly options: EventStreamOptions) {
    this.minBackoffMs = options.minBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.backoffMs = this.minBackoffMs;
  }

  start(): void {
    this.stopped = false;
    this.stopping = new AbortController();
    this.spawnChild();
  }

  private spawnChild(): void {
    if (this.stopped) return;
    this.running = this.runChild();
  }

  private async runChild(): Promise<void> {
    const { virshPath, uri, env, log } = this.options;
    const startedAt = Date.now();
    let child: LongRunningChild;
    try {
      child = await spawnLongRunning(virshPath, ['-r', '-q', '-c', uri, 'event', '--all', '--loop', '--timestamp'], {
        env: { ...process.env, ...env },
        signal: this.stopping.signal,
        stderrTailBytes: 2000,
        maxLineBytes: MAX_EVENT_LINE_BYTES,
        onLine: (line) => {
          const event = parseEventLine(line);
          if (event) this.options.onEvent(event);
        },
      });
    } catch (err) {
      if (this.stopped) return;
      log.warn({ err }, 'libvirt event stream could not be started');
      this.scheduleRestart();
      return;
    }
    this.child = child;
    // virsh prints nothing until an event arrives; one still alive after a moment has connected
    // (without libvirtd it exits at once). Decided in a setImmediate after the timer: a loop that
    // was busy runs due timers before it reaps children, so an exit already pending is seen first.
    const settle = setTimeout(() => {
      setImmediate(() => {
        if (child.exitStatus() !== null || this.stopped || this.child !== child) return;
        this.connected = true;
        this.options.onConnect?.();
      });
    }, SETTLE_MS);
    const { code, signal, stderr } = await child.exited;
    clearTimeout(settle);
    this.connected = false;
    if (this.child === child) this.child = undefined;
    if (this.stopped) return;
    if (Date.now() - startedAt > 60_000) this.backoffMs = this.minBackoffMs;
    log.warn({ code, signal, stderr: stderr.trim().slice(0, 500), retryInMs: this.backoffMs }, 'libvirt event stream ended; restarting');
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopped) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.maxBackoffMs, this.backoffMs * 2);
    this.timer = setTimeout(() => {
      this.restarts += 1;
      this.spawnChild();
    }, delay);
  }

  /** Kills the child (SIGTERM, then SIGKILL after 1 s) and waits for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopping.abort();
    await this.running;
  }
}
