import { MiB } from '../util/exec.js';
import { spawnLongRunning, type LongRunningChild } from '../util/long-running.js';
import type { LogLevel } from './classify.js';
import { kernelBootId } from '../host/boot.js';

/**
 * Follows one systemd unit through `journalctl -o json`, resuming after a saved cursor.
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

/**
 * Longest journalctl output line. Without --all, `-o json` prints a field over 4 KiB as null, so
 * real entries are a few KiB; the cap only bounds memory against a broken journal or journalctl
 * (killed at the cap, restarted by the caller like any exit).
 */
export const MAX_JOURNAL_LINE_BYTES = 4 * MiB;

type ExitDetail = Parameters<JournalFollowOptions['onExit']>[0];

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
  /** The current boot id (32 hex digits); default: the kernel's. */
  bootId?: () => string | null;
  /** journalctl ended (error text from its stderr); the caller restarts it after a delay. */
  onExit: (detail: { code: number | null; signal: string | null; stderr: string; badCursor: boolean }) => void;
}

/** Position of an entry in its journal's sequence: `s=` (sequence id) and `i=` (number, hex). */
export function cursorSeq(cursor: string): { id: string; n: bigint } | null {
  const m = /(?:^|;)s=([0-9a-f]+);i=([0-9a-f]+)(?:;|$)/.exec(cursor);
  return m ? { id: m[1]!, n: BigInt(`0x${m[2]!}`) } : null;
}

/** The boot a cursor belongs to (its `b=` field), or null. */
export function cursorBoot(cursor: string): string | null {
  return /(?:^|;)b=([0-9a-f]{32})(?:;|$)/.exec(cursor)?.[1] ?? null;
}

/** The running kernel's boot id in journald's form (32 hex digits, no dashes). */
export function currentBootId(): string | null {
  return kernelBootId()?.replace(/-/g, '') ?? null;
}

/**
 * Arguments for one journalctl run. `follow: false` is the catch-up run: it reads across boots
 * and exits. `-f` only ever shows the current boot (systemd 252), and shows nothing at all after
 * a cursor of an earlier boot, hence the two phases.
 */
export function journalctlArgs(o: Pick<JournalFollowOptions, 'unit' | 'directory'> & { follow: boolean; cursor: string | null; lines?: 'all' | '0' }): string[] {
  const args = ['-o', 'json', '--no-pager', '-u', o.unit];
  if (o.follow) args.splice(2, 0, '-f');
  if (o.directory) args.push(`--directory=${o.directory}`);
  if (o.cursor) args.push(`--after-cursor=${o.cursor}`);
  else if (o.lines) args.push('-n', o.lines);
  return args;
}

/**
 * Follows the unit: first a catch-up run from the saved cursor (or the beginning) to the end of
 * the journal, across boots; then `journalctl -f` after the last entry seen — or, when that entry
 * is from an earlier boot, `-f -n all` for the journal's latest boot. That may repeat entries
 * (when no later boot is in the journal yet), so entries at or before the last one seen in the
 * same sequence are dropped. `stop()` ends the running child (SIGTERM, then SIGKILL after 1 s).
 */
export class JournalFollower {
  private cursor: string | null;
  private stopped = false;
  /** Aborted by stop(): ends a child being spawned as well as a running one. */
  private readonly stopping = new AbortController();
  /** The current run, from spawn to its exit report; stop() waits for it. */
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly options: JournalFollowOptions) {
    this.cursor = options.cursor;
  }

  start(): void {
    const o = this.options;
    if (this.cursor === null && o.startAt === 'end') {
      this.follow(journalctlArgs({ ...o, follow: true, cursor: null, lines: '0' }));
      return;
    }
    this.run(journalctlArgs({ ...o, follow: false, cursor: this.cursor, lines: 'all' }), (detail) => {
      if (this.stopped) return;
      if (detail.code !== 0) {
        o.onExit(detail);
        return;
      }
      const boot = (o.bootId ?? currentBootId)();
      const sameBoot = this.cursor !== null && boot !== null && cursorBoot(this.cursor) === boot;
      this.follow(journalctlArgs({ ...o, follow: true, cursor: sameBoot ? this.cursor : null, lines: 'all' }));
    });
  }

  private follow(args: string[]): void {
    this.run(args, (detail) => this.options.onExit(detail));
  }

  private run(args: string[], onClose: (detail: ExitDetail) => void): void {
    this.running = this.runChild(args).then(onClose);
  }

  private async runChild(args: string[]): Promise<ExitDetail> {
    const o = this.options;
    let child: LongRunningChild;
    try {
      child = await spawnLongRunning(o.journalctl, args, {
        env: o.env ?? process.env,
        signal: this.stopping.signal,
        stderrTailBytes: 4096,
        maxLineBytes: MAX_JOURNAL_LINE_BYTES,
        onLine: (line) => this.line(line),
      });
    } catch (err) {
      return { code: null, signal: null, stderr: (err as Error).message, badCursor: false };
    }
    const { code, signal, stderr } = await child.exited;
    return { code, signal, stderr: stderr.trim(), badCursor: /seek to cursor/i.test(stderr) };
  }

  private line(line: string): void {
    if (!line) return;
    const entry = parseJournalLine(line);
    if (!entry) return;
    const seq = cursorSeq(entry.cursor);
    const last = this.cursor === null ? null : cursorSeq(this.cursor);
    if (seq && last && seq.id === last.id && seq.n <= last.n) return;
    this.cursor = entry.cursor;
    this.options.onEntry(entry);
  }

  /** Ends the running child (SIGTERM, then SIGKILL after 1 s) and waits for its exit report. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await this.running;
  }
}
