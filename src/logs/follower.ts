import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { BarbicanReason } from '../barbican/reasons.js';
import { toAgentError } from '../errors.js';
import type { HostPathResolver } from '../util/hostpath.js';
import { StateFiles, type StateFile, type StateStore } from '../util/state-file.js';
import type { NovaLogConfig } from './config.js';
import { LogCounting } from './counting.js';
import type { TailPosition } from './file-tail.js';
import { parseIncidentState, type Incident, type IncidentState, type IncidentTracker, type InstanceFailure } from './incidents.js';
import { NO_POSITIONS, type FollowerStats, type LogSource, type SourceDeps } from './source.js';
import { CriSource } from './source-cri.js';
import { fileSource } from './source-file.js';
import { JOURNAL_BACKOFF, JournaldSource, type JournalBackoff } from './source-journald.js';

export type { FollowerStats } from './source.js';
export type { JournalBackoff } from './source-journald.js';

/**
 * Follows nova-compute's log from one source (file, journald, CRI: one file each), hands its
 * lines to the counting, and saves the read position and the counts together in one file,
 * atomically, so after a restart (or a crash) every line is counted exactly once.
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
  private readonly counting: LogCounting;
  private readonly config: NovaLogConfig;
  private readonly log: Logger;
  private source: LogSource | null = null;
  /** CRI logs whose saved position was invalid: they start at `startAt`, not from 0. */
  private readonly criInvalid = new Set<string>();
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
    this.counting = new LogCounting(this.config.incidentWindowSeconds * 1000, this.log, {
      incident: (i) => this.emit('incident', i),
      attribution: (a) => this.emit('attribution', a),
      restartFailure: (r) => this.emit('restart-failure', r),
      changed: () => (this.dirty = true),
    });
  }

  get incidents(): IncidentTracker {
    return this.counting.tracker;
  }

  /** The Barbican reason the log gives for an instance, if any. */
  reasonFor(instanceUuid: string): InstanceFailure | undefined {
    return this.counting.tracker.instance(instanceUuid);
  }

  /** Loads the saved counts without following (one-shot reports for journald). */
  async loadOnly(): Promise<void> {
    this.counting.restore((await this.load())?.incidents ?? null);
  }

  /** Loads the saved state and starts following; never throws for a missing log. */
  start(): Promise<void> {
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const saved = await this.load();
    if (this.stopped) return;
    const sameTarget = saved !== null && saved.source === this.config.source && saved.target === this.target();
    this.counting.restore(saved?.incidents ?? null);
    const deps: SourceDeps = {
      config: this.config,
      hostPath: this.options.hostPath,
      env: this.options.env,
      log: this.log,
      stats: this.stats,
      line: (text, hints) => this.counting.line(text, hints),
      changed: () => (this.dirty = true),
      stopped: () => this.stopped,
    };
    switch (this.config.source) {
      case 'file':
        this.source = fileSource(deps, this.config.path, sameTarget ? saved.file : null);
        break;
      case 'cri':
        this.source = new CriSource(deps, sameTarget ? saved.cri : {}, !sameTarget, this.criInvalid);
        break;
      case 'journald': {
        const journal = new JournaldSource(deps, sameTarget ? saved.journalCursor : null, { ...JOURNAL_BACKOFF, ...this.options.journalBackoff });
        this.source = journal;
        journal.start();
        break;
      }
      case 'none':
        return;
    }
    if (this.config.source !== 'journald') await this.pollOnce();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    // A long first read (catch-up after downtime) ends after its current chunk.
    this.source?.interrupt();
    await this.starting.catch(() => undefined);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.polling) await this.polling;
    await this.source?.stop();
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
      const bytes = (await this.source?.poll()) ?? 0;
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
    return {
      version: 1,
      source: this.config.source,
      target: this.target(),
      ...NO_POSITIONS,
      ...this.source?.positions(),
      incidents: this.counting.tracker.snapshot(),
    };
  }

  private addSavedCounts(saved: IncidentState | undefined): void {
    if (!saved) return;
    const mine = this.counting.tracker.snapshot();
    for (const reason of Object.keys(mine.totals) as Array<keyof IncidentState['totals']>) mine.totals[reason] += saved.totals[reason] ?? 0;
    mine.lastCountedAt = Math.max(mine.lastCountedAt ?? 0, saved.lastCountedAt ?? 0) || null;
    this.counting.restore(mine);
  }

  private lastSave = 0;
  private async save(force: boolean): Promise<void> {
    if (this.config.source === 'none' || this.options.readOnly) return;
    if (this.stats.stateProblem !== null) {
      // The file could not be read at start: look again. Once it is gone or set aside (the operator
      // fixed the path) ours is saved; once readable again, its counts are added to ours (ours are
      // those since this start) and the sum saved, so neither side's failures are lost.
      const again = await this.stateFile.load();
      if (!again.canSave) return;
      if (again.value !== null) this.addSavedCounts(again.value.incidents);
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
