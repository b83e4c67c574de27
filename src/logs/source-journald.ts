import { JournalFollower } from './journald.js';
import type { LogSource, SourceDeps, SourcePositions } from './source.js';

export interface JournalBackoff {
  /** First delay; doubles per failed restart up to `maxMs`. */
  minMs: number;
  maxMs: number;
  /** A child that lived this long was healthy: the next failure starts from `minMs` again. */
  resetAfterMs: number;
  random: () => number;
}

export const JOURNAL_BACKOFF: JournalBackoff = { minMs: 5000, maxMs: 300_000, resetAfterMs: 60_000, random: Math.random };

/**
 * journald (`journalctl -f` from the saved cursor): entries are pushed, the cursor moves with
 * each; a journalctl that ends is restarted with backoff, and a vacuumed cursor continues from
 * the end (never from the beginning again: double counts).
 */
export class JournaldSource implements LogSource {
  private journal: JournalFollower | null = null;
  private restart: NodeJS.Timeout | null = null;
  private fromEnd = false;
  /** The next restart delay before jitter (the backoff step). */
  private step: number;
  /** The step a restart was last logged at (one warning per step, not per restart). */
  private loggedStep: number | null = null;
  private startedAt = 0;

  constructor(
    private readonly deps: SourceDeps,
    private cursor: string | null,
    private readonly backoff: JournalBackoff,
  ) {
    this.step = backoff.minMs;
  }

  start(): void {
    const { deps } = this;
    if (deps.stopped()) return;
    const cfg = deps.config;
    const directory = cfg.journalDirectory !== null ? deps.hostPath(cfg.journalDirectory) : deps.hostPath('/') === '/' ? null : deps.hostPath('/var/log/journal');
    this.startedAt = Date.now();
    this.journal = new JournalFollower({
      journalctl: cfg.journalctlPath,
      unit: cfg.unit,
      directory,
      cursor: this.cursor,
      // After an unusable cursor, never re-read the journal from its beginning (double counts).
      startAt: this.fromEnd ? 'end' : cfg.startAt,
      env: deps.env,
      onEntry: (entry) => {
        deps.stats.following = true;
        deps.stats.entriesRead += 1;
        deps.stats.bytesRead += entry.message.length;
        deps.stats.lastReadAt = Date.now();
        for (const line of entry.message.split('\n')) {
          if (line) deps.line(line, { ts: entry.ts, pid: entry.pid, level: entry.level });
        }
        this.cursor = entry.cursor;
        deps.changed();
      },
      onExit: ({ code, signal, stderr, badCursor }) => this.exited(code, signal, stderr, badCursor),
    });
    this.journal.start();
    deps.stats.following = true;
  }

  private exited(code: number | null, signal: string | null, stderr: string, badCursor: boolean): void {
    const { deps } = this;
    deps.stats.following = false;
    if (deps.stopped()) return;
    if (badCursor) {
      // The saved entry was vacuumed away: continue from the end and say so.
      deps.stats.lost += 1;
      deps.log.warn({ cursor: this.cursor }, 'saved journal cursor no longer exists; following from the end');
      this.cursor = null;
      this.fromEnd = true;
    }
    deps.stats.lastError = { code: 'VTPM_ERR_LOG_READ', message: `journalctl exited (code ${code}, signal ${signal}): ${stderr.slice(0, 500)}` };
    // A missing or broken journalctl ends at once, every time: back off exponentially (with
    // jitter, up to maxMs), from the start again once a child has lived a while.
    const b = this.backoff;
    if (Date.now() - this.startedAt >= b.resetAfterMs) {
      this.step = b.minMs;
      this.loggedStep = null;
    }
    let delay = 0;
    if (!badCursor) {
      const step = this.step;
      this.step = Math.min(b.maxMs, step * 2);
      delay = Math.round(step / 2 + (b.random() * step) / 2);
      const detail = { code, signal, stderr: stderr.slice(0, 500), retryInMs: delay };
      if (this.loggedStep !== step) {
        this.loggedStep = step;
        deps.log.warn(detail, 'journalctl ended; restarting it');
      } else {
        deps.log.debug(detail, 'journalctl ended again; restarting it');
      }
    }
    this.restart = setTimeout(() => this.start(), delay);
    this.restart.unref();
  }

  async poll(): Promise<number> {
    return 0;
  }

  interrupt(): void {}

  async stop(): Promise<void> {
    if (this.restart) clearTimeout(this.restart);
    this.restart = null;
    await this.journal?.stop();
    this.journal = null;
  }

  positions(): Partial<SourcePositions> {
    return { journalCursor: this.cursor };
  }
}
