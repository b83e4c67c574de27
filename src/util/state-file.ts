import { readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { z } from 'zod';
import { AgentError, formatIssues } from '../errors.js';
import { METRIC_PREFIX } from '../metric-prefix.js';
import { writeFileAtomic } from './atomic-file.js';

/**
 * Every file the agent keeps under its state directory goes through here, so they all behave the
 * same under faults:
 * - written atomically (temp file, fsync, rename, fsync of the directory): old or new, never torn;
 * - versioned: each document carries `version`; another version is not read as this one;
 * - a corrupt document is set aside as `<file>.corrupt-<UTC time>` (one naming scheme) with a
 *   warning, and the owner starts afresh;
 * - a file that cannot be read or written is a *problem* of its owner (an extension or a probe):
 *   the owner is not ready while it lasts (/readyz says which file and why), writes that fail count
 *   in `vtpm_state_write_errors_total{file}`, and the problem clears by itself on the next read or
 *   write that works;
 * - read-only mode (`vtpm-agent check`): reads, never writes, never moves anything.
 */

export interface StateFileSpec<T> {
  /** Logical name (`guests/snapshot`): the metric label and the key in /readyz. Keep it a constant. */
  name: string;
  /** Absolute path. */
  path: string;
  /** The version this agent writes and reads; the document's `version` field must equal it. */
  version: number;
  /** The whole document, `version` included. */
  schema: z.ZodType<T>;
  /** What the owner does while the file is unusable; ends every error message ("… ; <consequence>"). */
  consequence: string;
}

export interface Loaded<T> {
  /** The document; null when absent, corrupt (set aside) or unreadable. */
  value: T | null;
  /** Something an operator should know (corrupt or unreadable); null when all was well. */
  problem: string | null;
  /**
   * False when an existing file could not be read or set aside: a fresh document must not be
   * saved over it, or what it holds would be lost for good. Always false in read-only mode.
   */
  canSave: boolean;
  /** Where a corrupt file was moved. */
  setAsideTo?: string;
}

interface FileRecord {
  owner: string;
  name: string;
  path: string;
  problem: string | null;
  /** A read problem clears on a read that works; a write problem only on a write that works. */
  kind: 'read' | 'write';
}

/** `2026-11-28T18-58-26.123Z`: a file-name-safe UTC time for the set-aside copy. */
function corruptName(file: string, now: number): string {
  return `${file}.corrupt-${new Date(now).toISOString().replace(/:/g, '-')}`;
}

/** The per-agent registry of state files (never module-level: two agents in one process keep their own). */
export class StateFiles {
  private readonly files = new Map<string, FileRecord>();
  private readonly writeErrors = new Counter({ name: `${METRIC_PREFIX}state_write_errors_total`, help: 'Writes of an agent state file that failed, by logical file name.', labelNames: ['file'], registers: [] });
  readonly readOnly: boolean;

  constructor(private readonly options: { log: Logger; readOnly?: boolean }) {
    this.readOnly = options.readOnly === true;
  }

  /** The files of one owner (an extension or a probe, by name). */
  store(owner: string): StateStore {
    return new StateStore(this, owner);
  }

  /** @internal */
  record(owner: string, name: string, file: string): FileRecord {
    let r = this.files.get(name);
    if (!r) {
      r = { owner, name, path: file, problem: null, kind: 'read' };
      this.files.set(name, r);
      this.writeErrors.inc({ file: name }, 0);
    }
    r.path = file;
    return r;
  }

  /** @internal */
  setProblem(r: FileRecord, kind: 'read' | 'write', problem: string | null): void {
    if (problem === null && kind === 'read' && r.kind === 'write') return;
    // A write problem stays one until a write works, even if a read fails meanwhile.
    if (problem !== null && !(r.problem !== null && r.kind === 'write')) r.kind = kind;
    if (problem === r.problem) return;
    const log = this.options.log;
    if (problem === null) log.info({ file: r.name, path: r.path, owner: r.owner }, 'state file usable again');
    else log.error({ file: r.name, path: r.path, owner: r.owner, code: kind === 'write' ? 'VTPM_ERR_STATE_WRITE' : 'VTPM_ERR_STATE_UNREADABLE' }, problem);
    r.problem = problem;
  }

  /** @internal */
  countWriteError(name: string): void {
    this.writeErrors.inc({ file: name });
  }

  get log(): Logger {
    return this.options.log;
  }

  /**
   * An owner that no longer runs (an extension or probe a reload disabled): its problems would
   * otherwise keep the agent not ready, since no later write of its would clear them.
   */
  forget(owner: string): void {
    for (const [key, r] of this.files) if (r.owner === owner) this.files.delete(key);
  }

  /** Current problems by owner: each owner listed here is not ready. */
  problems(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.files.values()) {
      if (r.problem === null) continue;
      out.set(r.owner, [...(out.get(r.owner) ?? []), `${r.name}: ${r.problem}`]);
    }
    return out;
  }

  register(registry: Registry): void {
    registry.registerMetric(this.writeErrors);
  }
}

/** One owner's view: opens its files, so every problem is attributed to it. */
export class StateStore {
  private readonly opened = new Map<string, StateFile<unknown>>();

  constructor(
    readonly files: StateFiles,
    readonly owner: string,
  ) {}

  get readOnly(): boolean {
    return this.files.readOnly;
  }

  /** The same object for the same name (opened again at each probe run). */
  file<T>(spec: StateFileSpec<T>): StateFile<T> {
    const existing = this.opened.get(spec.name) as StateFile<T> | undefined;
    if (existing && existing.path === spec.path) return existing;
    const f = new StateFile<T>(spec, this.files, this.files.record(this.owner, spec.name, spec.path));
    this.opened.set(spec.name, f as StateFile<unknown>);
    return f;
  }
}

export class StateFile<T> {
  private tempsCleaned = false;

  /** @internal use StateStore.file */
  constructor(
    private readonly spec: StateFileSpec<T>,
    private readonly files: StateFiles,
    private readonly rec: FileRecord,
  ) {}

  get path(): string {
    return this.spec.path;
  }

  get name(): string {
    return this.spec.name;
  }

  /** The current problem (unreadable, unwritable), or null. */
  get problem(): string | null {
    return this.rec.problem;
  }

  async load(now = Date.now()): Promise<Loaded<T>> {
    const { path: file, consequence } = this.spec;
    const readOnly = this.files.readOnly;
    if (!readOnly && !this.tempsCleaned) {
      this.tempsCleaned = true;
      await removeStaleTemps(file);
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        if (!readOnly) this.files.setProblem(this.rec, 'read', null);
        return { value: null, problem: null, canSave: !readOnly };
      }
      const problem = `cannot read ${file} (${code ?? (err as Error).message}); it is left as it is and not saved over; ${consequence}`;
      if (!readOnly) this.files.setProblem(this.rec, 'read', problem);
      return { value: null, problem, canSave: false };
    }
    const what = this.validate(text);
    if (what.ok) {
      if (!readOnly) this.files.setProblem(this.rec, 'read', null);
      return { value: what.value, problem: null, canSave: !readOnly };
    }
    if (readOnly) return { value: null, problem: `${file} ${what.problem}; read as empty (a one-shot check moves nothing; the daemon sets it aside)`, canSave: false };
    const aside = corruptName(file, now);
    try {
      await rename(file, aside);
    } catch (err) {
      const problem = `${file} ${what.problem} and cannot be set aside (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); it is left as it is and not saved over; ${consequence}`;
      this.files.setProblem(this.rec, 'read', problem);
      return { value: null, problem, canSave: false };
    }
    this.files.setProblem(this.rec, 'read', null);
    const problem = `${file} ${what.problem}; set aside as ${aside}, started afresh`;
    this.files.log.warn({ file: this.spec.name, path: file, movedTo: aside, code: 'VTPM_ERR_STATE_CORRUPT' }, `state file ${problem}`);
    return { value: null, problem, canSave: true, setAsideTo: aside };
  }

  private validate(text: string): { ok: true; value: T } | { ok: false; problem: string } {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { ok: false, problem: 'is not JSON' };
    }
    const version = (raw as { version?: unknown } | null)?.version;
    if (version !== this.spec.version) return { ok: false, problem: `has version ${JSON.stringify(version)}, this agent reads version ${this.spec.version}` };
    const parsed = this.spec.schema.safeParse(raw);
    if (parsed.success) return { ok: true, value: parsed.data };
    const issues = formatIssues(parsed.error).slice(0, 3);
    return { ok: false, problem: `did not match the expected format (${issues.join('; ')})` };
  }

  /**
   * Writes the document atomically. On failure the problem is recorded (owner not ready, metric,
   * one log line per change) and a VTPM_ERR_STATE_WRITE naming the path is thrown; the next
   * successful write clears it. In read-only mode nothing is written.
   */
  async save(value: T): Promise<void> {
    if (this.files.readOnly) return;
    try {
      await writeFileAtomic(this.spec.path, `${JSON.stringify(value)}\n`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const problem = `cannot write ${this.spec.path} (${code}); ${this.spec.consequence}; retrying at the next save`;
      this.files.countWriteError(this.spec.name);
      this.files.setProblem(this.rec, 'write', problem);
      throw new AgentError('VTPM_ERR_STATE_WRITE', problem, { cause: err, details: { file: this.spec.name, path: this.spec.path } });
    }
    this.files.setProblem(this.rec, 'write', null);
  }
}

/** Removes temp files that a killed writer of this file left behind (`.<name>.<pid>.<rand>.tmp`, other pids only). */
async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const stale = names.filter((n) => n.startsWith(prefix) && n.endsWith('.tmp') && !n.startsWith(`${prefix}${process.pid}.`));
  await Promise.all(stale.map((n) => rm(path.join(dir, n), { force: true })));
}
