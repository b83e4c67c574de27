import { killChild } from '../util/kill-child.js';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { childEnv } from '../util/child-env.js';

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
  private child: ChildProcess | undefined;
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
    this.spawnChild();
  }

  private spawnChild(): void {
    if (this.stopped) return;
    const { virshPath, uri, env, log } = this.options;
    const startedAt = Date.now();
    let child: ChildProcess;
    try {
      child = spawn(virshPath, ['-r', '-q', '-c', uri, 'event', '--all', '--loop', '--timestamp'], {
        env: childEnv({ ...process.env, ...env }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      log.warn({ err }, 'libvirt event stream could not be started');
      this.scheduleRestart();
      return;
    }
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    // virsh prints nothing until an event arrives; one that is still alive after a moment has
    // connected (without libvirtd it exits at once).
    let settle: NodeJS.Timeout | undefined;
    child.on('spawn', () => {
      settle = setTimeout(() => {
        if (child.exitCode !== null || child.signalCode !== null || this.stopped) return;
        this.connected = true;
        this.options.onConnect?.();
      }, SETTLE_MS);
    });
    let carry = '';
    let overflowed = false;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      if (overflowed) return;
      const lines = (carry + chunk).split('\n');
      carry = lines.pop() ?? '';
      for (const line of lines) {
        const event = parseEventLine(line);
        if (event) this.options.onEvent(event);
      }
      if (carry.length > MAX_EVENT_LINE_BYTES) {
        overflowed = true;
        carry = '';
        stderr = `${stderr}\n[vtpm-agent] output line longer than ${MAX_EVENT_LINE_BYTES} bytes: killed`.slice(-2000);
        killChild(child, 'SIGTERM');
      }
    });
    child.on('error', (err) => log.warn({ err }, 'libvirt event stream error'));
    child.on('close', (code, signal) => {
      clearTimeout(settle);
      this.connected = false;
      if (this.child === child) this.child = undefined;
      if (this.stopped) return;
      if (Date.now() - startedAt > 60_000) this.backoffMs = this.minBackoffMs;
      log.warn({ code, signal, stderr: stderr.trim().slice(0, 500), retryInMs: this.backoffMs }, 'libvirt event stream ended; restarting');
      this.scheduleRestart();
    });
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
    const child = this.child;
    // No pid: the spawn failed and there is nothing to stop (and kill() would signal our own group).
    if (!child || !child.pid || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => killChild(child, 'SIGKILL'), 1000);
      child.once('close', () => {
        clearTimeout(kill);
        resolve();
      });
      killChild(child, 'SIGTERM');
    });
  }
}
