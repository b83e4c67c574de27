import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { BarbicanReason } from '../barbican/reasons.js';
import { toAgentError } from '../errors.js';
import type { HostPathResolver } from '../util/hostpath.js';
import { classify, parseLine, type ParseHints } from './classify.js';
import type { NovaLogConfig } from './config.js';
import { CriJoiner, criTime, discoverCriLogs } from './cri.js';
import { FileTail, type TailEvent, type TailPosition } from './file-tail.js';
import { emptyIncidentState, IncidentTracker, parseIncidentState, type Incident, type IncidentState, type InstanceFailure } from './incidents.js';
import { JournalFollower } from './journald.js';
import { isCandidateLine, scanCandidateLines } from './scan.js';
import { StateFiles, type StateFile, type StateStore } from '../util/state-file.js';

/**
 * Follows nova-compute's log from one source (file, journald, CRI), classifies its lines and
 * keeps the counts. The read position and the counts are saved together in one file, atomically,
 * so after a restart (or a crash) every line is counted exactly once.
 */

export interface PersistedLogState {
  version: 1;
  /** Which source and target the positions belong to; a change of either drops them. */
  source: NovaLogConfig['source'];
  target: string;
  file: TailPosition | null;
  cri: Record<string, TailPosition>;
  journalCursor: string | null;
  incidents: IncidentState;
}

export interface FollowerStats {
  following: boolean;
  bytesRead: number;
  entriesRead: number;
  rotations: number;
  lost: number;
  lastReadAt: number | null;
  lastSavedAt: number | null;
  lastError: { code: string; message: string } | null;
  files: string[];
  /**
   * The state file could not be read (other than absent): it is left alone and never saved over,
   * so counts and positions are not persisted until it is fixed. Also set while a corrupt file
   * could not be moved aside.
   */
  stateProblem: string | null;
}

const filePositionSchema = z.object({
  dev: z.number().int().nonnegative(),
  ino: z.number().int().nonnegative(),
  offset: z.number().int().nonnegative(),
  head: z.string().regex(/^(?:[0-9a-f]{2}){0,64}$/),
});
const tailPositionSchema = z.object({ current: filePositionSchema.nullable(), previous: filePositionSchema.nullable() });

/** The saved document; positions are checked one by one in load (a bad one is dropped, not the whole file). */
const persistedSchema = z.object({
  version: z.literal(1),
  source: z.enum(['none', 'file', 'journald', 'cri']).catch('none'),
  target: z.string().catch(''),
  file: z.unknown(),
  cri: z.record(z.string(), z.unknown()).catch({}),
  journalCursor: z.string().nullable().catch(null),
  incidents: z.unknown().transform((v, c) => parseIncidentState(v) ?? (c.addIssue({ code: 'custom', message: 'the incident counts are malformed' }), z.NEVER)),
});

/** A saved position, or null when it is not one (then the source starts at `startAt`). */
function parsePosition(value: unknown): TailPosition | null {
  const r = tailPositionSchema.safeParse(value);
  return r.success ? r.data : null;
}

export interface FollowerEvents {
  incident: [Incident];
  attribution: [InstanceFailure];
  'restart-failure': [{ instanceUuid: string; reason: BarbicanReason | null }];
}

export interface FollowerOptions {
  config: NovaLogConfig;
  /** Absolute path of the state file. */
  stateFile: string;
  /** The owner's state files (the agent's, so a problem shows in /readyz); a private one when absent. */
  store?: StateStore;
  hostPath: HostPathResolver;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Minimum time between two state saves while lines keep coming. */
  saveIntervalMs?: number;
  /**
   * Never write the state file (`vtpm-agent check`): a one-shot check must not move the saved
   * position, or the daemon would never count the lines the check read.
   */
  readOnly?: boolean;
  /** Restart delays of a journalctl that keeps ending (tests shorten them). */
  journalBackoff?: Partial<JournalBackoff>;
}

export interface JournalBackoff {
  /** First delay; doubles per failed restart up to `maxMs`. */
  minMs: number;
  maxMs: number;
  /** A child that lived this long was healthy: the next failure starts from `minMs` again. */
  resetAfterMs: number;
  random: () => number;
}

const JOURNAL_BACKOFF: JournalBackoff = { minMs: 5000, maxMs: 300_000, resetAfterMs: 60_000, random: Math.random };

interface CriTrack {
  tail: FileTail;
  joiner: CriJoiner;
  idle: number;
}

export function stateFilePath(stateDir: string, stateFile: string): string {
  return path.isAbsolute(stateFile) ? stateFile : path.join(stateDir, stateFile);
}

export class NovaLogFollower extends EventEmitter<FollowerEvents> {
  readonly stats: FollowerStats = {
    following: false,
    bytesRead: 0,
    entriesRead: 0,
    rotations: 0,
    lost: 0,
    lastReadAt: null,
    lastSavedAt: null,
    lastError: null,
    files: [],
    stateProblem: null,
  };
  private tracker = new IncidentTracker(emptyIncidentState(), { windowMs: 1 });
  private readonly config: NovaLogConfig;
  private readonly log: Logger;
  private fileTail: FileTail | null = null;
  private readonly cri = new Map<string, CriTrack>();
  private criSaved: Record<string, TailPosition> = {};
  private criFirstStart = false;
  /** CRI logs whose saved position was invalid: they start at `startAt`, not from 0. */
  private readonly criInvalid = new Set<string>();
  private journal: JournalFollower | null = null;
  private journalCursor: string | null = null;
  private journalRestart: NodeJS.Timeout | null = null;
  private journalFromEnd = false;
  private readonly journalBackoff: JournalBackoff;
  /** The next restart delay before jitter (the backoff step). */
  private journalStep: number;
  /** The step a restart was last logged at (one warning per step, not per restart). */
  private journalLoggedStep: number | null = null;
  private journalStartedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();
  private stopped = false;
  private starting: Promise<void> = Promise.resolve();
  private readonly stateFile: StateFile<z.infer<typeof persistedSchema>>;

  constructor(private readonly options: FollowerOptions) {
    super();
    const store = options.store ?? new StateFiles({ log: options.log, readOnly: options.readOnly }).store('nova-log');
    this.stateFile = store.file({
      name: 'nova-log',
      path: options.stateFile,
      version: 1,
      schema: persistedSchema,
      consequence: 'Barbican failure counts and log positions are not saved (a restart would lose or recount them)',
    });
    this.config = options.config;
    this.log = options.log;
    this.journalBackoff = { ...JOURNAL_BACKOFF, ...options.journalBackoff };
    this.journalStep = this.journalBackoff.minMs;
  }

  get incidents(): IncidentTracker {
    return this.tracker;
  }

  /** The Barbican reason the log gives for an instance, if any. */
  reasonFor(instanceUuid: string): InstanceFailure | undefined {
    return this.tracker.instance(instanceUuid);
  }

  /** Loads the saved counts without following (one-shot reports for journald). */
  async loadOnly(): Promise<void> {
    const saved = await this.load();
    this.tracker = new IncidentTracker(saved?.incidents ?? emptyIncidentState(), { windowMs: this.config.incidentWindowSeconds * 1000 });
  }

  /** Loads the saved state and starts following; never throws for a missing log. */
  start(): Promise<void> {
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const saved = await this.load();
    if (this.stopped) return;
    const target = this.target();
    const sameTarget = saved !== null && saved.source === this.config.source && saved.target === target;
    this.tracker = new IncidentTracker(saved?.incidents ?? emptyIncidentState(), { windowMs: this.config.incidentWindowSeconds * 1000 });
    const hostPath = this.options.hostPath;
    switch (this.config.source) {
      case 'file':
        this.fileTail = this.makeTail(hostPath(this.config.path), sameTarget ? saved.file : null, this.config.startAt, (lines) => {
          this.plainLines(lines);
          return undefined;
        });
        break;
      case 'cri':
        this.criSaved = sameTarget ? saved.cri : {};
        this.criFirstStart = !sameTarget;
        break;
      case 'journald':
        this.journalCursor = sameTarget ? saved.journalCursor : null;
        this.startJournal();
        break;
      case 'none':
        return;
    }
    if (this.config.source !== 'journald') await this.pollOnce();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // A long first read (catch-up after downtime) ends after its current chunk.
    this.fileTail?.interrupt();
    for (const t of this.cri.values()) t.tail.interrupt();
    await this.starting.catch(() => undefined);
    if (this.timer) clearTimeout(this.timer);
    if (this.journalRestart) clearTimeout(this.journalRestart);
    this.timer = null;
    if (this.polling) await this.polling;
    if (this.journal) await this.journal.stop();
    this.journal = null;
    await this.fileTail?.close();
    for (const t of this.cri.values()) await t.tail.close();
    await this.save(true);
    await this.saving;
  }

  /** One round of reading (file and CRI sources); also saves when something changed. */
  async pollOnce(): Promise<void> {
    if (this.polling) return this.polling;
    this.polling = this.doPoll().finally(() => {
      this.polling = null;
    });
    return this.polling;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pollOnce().then(() => this.schedule());
    }, this.config.pollIntervalSeconds * 1000);
    this.timer.unref();
  }

  private async doPoll(): Promise<void> {
    if (this.stopped) return;
    try {
      let bytes = 0;
      if (this.fileTail) {
        bytes += await this.fileTail.poll();
        this.stats.following = this.fileTail.following;
        this.stats.files = this.fileTail.following ? [this.fileTail.file] : [];
      } else if (this.config.source === 'cri') {
        bytes += await this.pollCri();
      }
      if (bytes > 0) {
        this.stats.bytesRead += bytes;
        this.stats.lastReadAt = Date.now();
        this.dirty = true;
      }
    } catch (err) {
      const e = toAgentError(err, 'VTPM_ERR_LOG_READ');
      this.stats.lastError = { code: e.code, message: e.message };
      this.log.warn({ err: e.toJSON() }, 'reading the nova-compute log failed');
    }
    await this.save(false);
  }

  private makeTail(file: string, position: TailPosition | null, startAt: 'end' | 'beginning', sink: (lines: Buffer, end: number) => number | undefined): FileTail {
    return new FileTail({
      file,
      position,
      startAt,
      maxLineBytes: this.config.maxLineBytes,
      sink: (lines, end) => sink(lines, end),
      onEvent: (e) => this.tailEvent(e),
    });
  }

  private tailEvent(e: TailEvent): void {
    if (e.kind === 'rotated') {
      this.stats.rotations += 1;
      this.log.info({ file: e.file, how: e.how }, 'nova-compute log rotated');
    } else if (e.kind === 'lost') {
      this.stats.lost += 1;
      this.log.warn({ file: e.file, detail: e.detail }, 'nova-compute log lines could not be read');
    } else if (e.kind === 'recovered') {
      this.log.info({ file: e.file, from: e.from, bytes: e.bytes }, 'read the end of a truncated nova-compute log from its copy');
    } else if (e.kind === 'overlong') {
      this.log.debug({ file: e.file, bytes: e.bytes }, 'cut an overlong line');
    }
  }

  private plainLines(lines: Buffer): void {
    const now = Date.now();
    scanCandidateLines(lines, 0, lines.length, (start, end) => this.handleText(lines.toString('utf8', start, end), { ts: now }));
  }

  private async pollCri(): Promise<number> {
    const found = await discoverCriLogs(this.config.glob, this.config.container, this.options.hostPath);
    const seen = new Set(found.map((f) => f.target));
    for (const f of found) {
      if (this.cri.has(f.target)) continue;
      const joiner = new CriJoiner(this.config.maxLineBytes);
      const saved = this.criSaved[f.target] ?? null;
      // Only the very first start may skip history; a container log that appears later (a
      // restart) is new, and every line of it counts.
      const startAt = saved === null && (this.criFirstStart || this.criInvalid.has(f.target)) ? this.config.startAt : 'beginning';
      const tail = this.makeTail(this.options.hostPath(f.target), saved, startAt, (lines, end) =>
        joiner.consume(
          lines,
          end,
          (rec) => {
            if (isCandidateLine(rec.message, 0, rec.message.length)) this.handleText(rec.message.toString('utf8'), { ts: criTime(rec) });
          },
          isCandidateLine,
        ),
      );
      this.cri.set(f.target, { tail, joiner, idle: 0 });
      this.log.info({ file: f.target, link: f.link, startAt: saved ? 'saved position' : startAt }, 'following nova-compute container log');
    }
    this.criFirstStart = false;
    let bytes = 0;
    // Oldest restart first, so lines keep their order across a container restart.
    const ordered = [...this.cri.entries()].sort(([a], [b]) => {
      const ra = found.find((f) => f.target === a);
      const rb = found.find((f) => f.target === b);
      return (ra?.restart ?? -1) - (rb?.restart ?? -1);
    });
    for (const [target, track] of ordered) {
      const n = await track.tail.poll();
      bytes += n;
      if (seen.has(target)) {
        track.idle = 0;
        continue;
      }
      // The link is gone (container removed): the file is drained once it stops giving bytes.
      track.idle = n === 0 ? track.idle + 1 : 0;
      if (track.idle >= 2) {
        track.joiner.flush((rec) => this.handleText(rec.message.toString('utf8'), { ts: criTime(rec) }));
        await track.tail.close();
        this.cri.delete(target);
        this.dirty = true;
      }
    }
    this.stats.following = [...this.cri.values()].some((t) => t.tail.following);
    this.stats.files = [...this.cri.keys()];
    return bytes;
  }

  private startJournal(): void {
    if (this.stopped) return;
    const directory =
      this.config.journalDirectory !== null
        ? this.options.hostPath(this.config.journalDirectory)
        : this.options.hostPath('/') === '/'
          ? null
          : this.options.hostPath('/var/log/journal');
    this.journalStartedAt = Date.now();
    this.journal = new JournalFollower({
      journalctl: this.config.journalctlPath,
      unit: this.config.unit,
      directory,
      cursor: this.journalCursor,
      // After an unusable cursor, never re-read the journal from its beginning (double counts).
      startAt: this.journalFromEnd ? 'end' : this.config.startAt,
      env: this.options.env,
      onEntry: (entry) => {
        this.stats.following = true;
        this.stats.entriesRead += 1;
        this.stats.bytesRead += entry.message.length;
        this.stats.lastReadAt = Date.now();
        for (const line of entry.message.split('\n')) {
          if (line) this.handleText(line, { ts: entry.ts, pid: entry.pid, level: entry.level });
        }
        this.journalCursor = entry.cursor;
        this.dirty = true;
      },
      onExit: ({ code, signal, stderr, badCursor }) => {
        this.stats.following = false;
        if (this.stopped) return;
        if (badCursor) {
          // The saved entry was vacuumed away: continue from the end and say so.
          this.stats.lost += 1;
          this.log.warn({ cursor: this.journalCursor }, 'saved journal cursor no longer exists; following from the end');
          this.journalCursor = null;
          this.journalFromEnd = true;
        }
        this.stats.lastError = { code: 'VTPM_ERR_LOG_READ', message: `journalctl exited (code ${code}, signal ${signal}): ${stderr.slice(0, 500)}` };
        // A missing or broken journalctl ends at once, every time: back off exponentially (with
        // jitter, up to maxMs), from the start again once a child has lived a while.
        const b = this.journalBackoff;
        if (Date.now() - this.journalStartedAt >= b.resetAfterMs) {
          this.journalStep = b.minMs;
          this.journalLoggedStep = null;
        }
        let delay = 0;
        if (!badCursor) {
          const step = this.journalStep;
          this.journalStep = Math.min(b.maxMs, step * 2);
          delay = Math.round(step / 2 + (b.random() * step) / 2);
          const detail = { code, signal, stderr: stderr.slice(0, 500), retryInMs: delay };
          if (this.journalLoggedStep !== step) {
            this.journalLoggedStep = step;
            this.log.warn(detail, 'journalctl ended; restarting it');
          } else {
            this.log.debug(detail, 'journalctl ended again; restarting it');
          }
        }
        this.journalRestart = setTimeout(() => this.startJournal(), delay);
        this.journalRestart.unref();
      },
    });
    this.journal.start();
    this.stats.following = true;
  }

  /** One decoded line, from any source. */
  private handleText(text: string, hints: ParseHints): void {
    const line = parseLine(text, hints);
    const c = classify(line);
    if (c.reason === null && c.marker === null) return;
    const o = this.tracker.observe(line, c);
    if (o.counted) {
      this.dirty = true;
      this.log.info({ reason: o.counted.reason, instanceUuid: line.instanceUuid }, 'Barbican failure in nova-compute log');
      this.emit('incident', o.counted);
    }
    if (o.attributed) this.emit('attribution', o.attributed);
    if (o.restartFailure) {
      this.dirty = true;
      this.emit('restart-failure', o.restartFailure);
    }
  }

  private target(): string {
    switch (this.config.source) {
      case 'file':
        return this.config.path;
      case 'journald':
        return `${this.config.unit}@${this.config.journalDirectory ?? ''}`;
      case 'cri':
        return `${this.config.glob}#${this.config.container}`;
      default:
        return '';
    }
  }

  /**
   * The saved state, or null when there is none to use. The state file helper leaves an unreadable
   * file in place (never saved over: counts are not persisted until it is readable, and the
   * extension is not ready meanwhile) and sets a corrupt one aside. Invalid positions are dropped
   * one by one: their source starts at `startAt`, never again from 0 (double counts).
   */
  private async load(): Promise<PersistedLogState | null> {
    const loaded = await this.stateFile.load();
    if (!loaded.canSave && !this.options.readOnly) {
      this.stats.stateProblem = loaded.problem;
      this.stats.lastError = { code: 'VTPM_ERR_STATE_UNREADABLE', message: loaded.problem ?? 'state file unusable' };
      return null;
    }
    this.stats.stateProblem = null;
    if (loaded.problem) this.stats.lastError = { code: 'VTPM_ERR_STATE_CORRUPT', message: loaded.problem };
    const r = loaded.value;
    if (!r) return null;
    const dropped: string[] = [];
    let filePos: TailPosition | null = null;
    if (r.file !== undefined && r.file !== null) {
      filePos = parsePosition(r.file);
      if (filePos === null) dropped.push('file');
    }
    const cri: Record<string, TailPosition> = {};
    for (const [target, value] of Object.entries(r.cri)) {
      const pos = parsePosition(value);
      if (pos) cri[target] = pos;
      else {
        dropped.push(`cri:${target}`);
        this.criInvalid.add(target);
      }
    }
    if (dropped.length) {
      this.log.warn({ file: this.stateFile.path, dropped, startAt: this.config.startAt }, 'invalid saved nova-compute log positions dropped; those logs start at startAt');
    }
    return { version: 1, source: r.source as NovaLogConfig['source'], target: r.target, file: filePos, cri, journalCursor: r.journalCursor, incidents: r.incidents };
  }

  snapshot(): PersistedLogState {
    const cri: Record<string, TailPosition> = {};
    for (const [target, t] of this.cri) cri[target] = t.tail.position();
    return {
      version: 1,
      source: this.config.source,
      target: this.target(),
      file: this.fileTail?.position() ?? null,
      cri,
      journalCursor: this.journalCursor,
      incidents: this.tracker.snapshot(),
    };
  }

  private lastSave = 0;
  private async save(force: boolean): Promise<void> {
    if (this.config.source === 'none' || this.options.readOnly) return;
    if (this.stats.stateProblem !== null) {
      // The file could not be read at start: look again, and once it is gone or set aside (the
      // operator fixed the path) save ours. A file readable again is never overwritten.
      const again = await this.stateFile.load();
      if (!again.canSave || again.value !== null) return;
      this.stats.stateProblem = null;
      this.log.info({ file: this.stateFile.path }, 'nova-compute log state file usable again; saving counts and positions');
      force = true;
    }
    if (!this.dirty && !force) return;
    const interval = this.options.saveIntervalMs ?? 1000;
    if (!force && Date.now() - this.lastSave < interval) return;
    // Positions and counts are taken in the same synchronous step, so they always agree.
    const snapshot = this.snapshot();
    this.dirty = false;
    this.lastSave = Date.now();
    this.saving = this.saving.then(async () => {
      try {
        await this.stateFile.save(snapshot);
        this.stats.lastSavedAt = Date.now();
      } catch (err) {
        // Logged once per change and shown in /readyz by the state file; retried at the next save.
        this.dirty = true;
        const e = toAgentError(err, 'VTPM_ERR_STATE_WRITE');
        this.stats.lastError = { code: e.code, message: e.message };
      }
    });
    await this.saving;
  }
}
