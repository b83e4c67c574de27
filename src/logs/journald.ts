import { spawn, type ChildProcess } from 'node:child_process';
import type { LogLevel } from './classify.js';

/**
 * Follows one systemd unit through `journalctl -o json -f`, resuming after a saved cursor.
 * journalctl does the journal-file work (rotation, vacuuming, boots); this module only parses its
 * JSON lines into typed entries, at the edge.
 */

export interface JournalEntry {
  cursor: string;
  /** Unix ms from __REALTIME_TIMESTAMP. */
  ts: number | null;
  pid: number | null;
  level: LogLevel | null;
  message: string;
}

/** syslog priorities → oslo level names, for lines whose text carries no level of its own. */
function levelOf(priority: unknown): LogLevel | null {
  const p = typeof priority === 'string' ? Number(priority) : NaN;
  if (!Number.isInteger(p)) return null;
  if (p <= 2) return 'CRITICAL';
  if (p === 3) return 'ERROR';
  if (p === 4) return 'WARNING';
  if (p <= 6) return 'INFO';
  return 'DEBUG';
}

/** Parses one line of `journalctl -o json`; null when it is not an entry (never throws). */
export function parseJournalLine(line: string): JournalEntry | null {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof obj !== 'object' || obj === null) return null;
  const o = obj as Record<string, unknown>;
  if (typeof o.__CURSOR !== 'string') return null;
  let message = '';
  // journald gives MESSAGE as a string, as an array of bytes when it is not valid UTF-8, and as
  // null when it is larger than journalctl's field limit.
  if (typeof o.MESSAGE === 'string') message = o.MESSAGE;
  else if (Array.isArray(o.MESSAGE)) message = Buffer.from(o.MESSAGE.filter((b): b is number => typeof b === 'number')).toString('utf8');
  const micros = typeof o.__REALTIME_TIMESTAMP === 'string' ? Number(o.__REALTIME_TIMESTAMP) : NaN;
  const pid = typeof o._PID === 'string' ? Number(o._PID) : NaN;
  return {
    cursor: o.__CURSOR,
    ts: Number.isFinite(micros) ? Math.floor(micros / 1000) : null,
    pid: Number.isInteger(pid) ? pid : null,
    level: levelOf(o.PRIORITY),
    message,
  };
}

export interface JournalFollowOptions {
  journalctl: string;
  unit: string;
  /** `--directory`: a journal directory (the host's under a host root, or a test's). */
  directory: string | null;
  /** Resume after this entry; null: start per `startAt`. */
  cursor: string | null;
  startAt: 'end' | 'beginning';
  env?: NodeJS.ProcessEnv;
  onEntry: (entry: JournalEntry) => void;
  /** journalctl ended (error text from its stderr); the caller restarts it after a delay. */
  onExit: (detail: { code: number | null; signal: string | null; stderr: string; badCursor: boolean }) => void;
}

export function journalctlArgs(o: Pick<JournalFollowOptions, 'unit' | 'directory' | 'cursor' | 'startAt'>): string[] {
  const args = ['-o', 'json', '-f', '--no-pager', '-u', o.unit];
  if (o.directory) args.push(`--directory=${o.directory}`);
  if (o.cursor) args.push(`--after-cursor=${o.cursor}`);
  else args.push('-n', o.startAt === 'end' ? '0' : 'all');
  return args;
}

/** A running `journalctl -f`; `stop()` ends it (SIGTERM, then SIGKILL after 1 s). */
export class JournalFollower {
  private child: ChildProcess | null = null;
  private carry = '';

  constructor(private readonly options: JournalFollowOptions) {}

  start(): void {
    const o = this.options;
    const child = spawn(o.journalctl, journalctlArgs(o), { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
    this.child = child;
    let stderr = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.data(chunk));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });
    let reported = false;
    const report = (code: number | null, signal: string | null): void => {
      if (reported) return;
      reported = true;
      if (this.child === child) this.child = null;
      o.onExit({ code, signal, stderr: stderr.trim(), badCursor: /seek to cursor/i.test(stderr) });
    };
    child.on('error', (err) => {
      stderr += String(err.message);
      report(null, null);
    });
    child.on('close', (code, signal) => report(code, signal));
  }

  private data(chunk: string): void {
    const text = this.carry + chunk;
    const lines = text.split('\n');
    this.carry = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      const entry = parseJournalLine(line);
      if (entry) this.options.onEntry(entry);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
    await closed;
    clearTimeout(timer);
  }
}
