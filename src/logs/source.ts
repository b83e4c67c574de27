import type { Logger } from 'pino';
import type { HostPathResolver } from '../util/hostpath.js';
import type { ParseHints } from './classify.js';
import type { NovaLogConfig } from './config.js';
import { FileTail, type TailEvent, type TailPosition } from './file-tail.js';

/** What the follower shows about its reading (status, metrics). */
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
   * so counts and positions are not persisted until it is usable again.
   */
  stateProblem: string | null;
}

/** The read positions a source saves with the counts (the other fields keep their empty value). */
export interface SourcePositions {
  file: TailPosition | null;
  cri: Record<string, TailPosition>;
  journalCursor: string | null;
}

export const NO_POSITIONS: SourcePositions = { file: null, cri: {}, journalCursor: null };

/** What every source gets from the follower. */
export interface SourceDeps {
  config: NovaLogConfig;
  hostPath: HostPathResolver;
  env?: NodeJS.ProcessEnv;
  log: Logger;
  stats: FollowerStats;
  /** One decoded line for the counting. */
  line(text: string, hints: ParseHints): void;
  /** Something new to save (positions moved). */
  changed(): void;
  stopped(): boolean;
}

/** One way nova-compute logs: a plain file, CRI container logs, or journald. */
export interface LogSource {
  /** Reads what is new (file, CRI); a push source (journald) returns 0. */
  poll(): Promise<number>;
  /** Ends a long read after its current chunk. */
  interrupt(): void;
  stop(): Promise<void>;
  positions(): Partial<SourcePositions>;
}

/** A FileTail whose rotations and losses land in the stats and the log. */
export function makeTail(deps: SourceDeps, file: string, position: TailPosition | null, startAt: 'end' | 'beginning', sink: (lines: Buffer, end: number) => number | undefined): FileTail {
  return new FileTail({
    file,
    position,
    startAt,
    maxLineBytes: deps.config.maxLineBytes,
    sink,
    onEvent: (e) => tailEvent(deps, e),
  });
}

function tailEvent(deps: SourceDeps, e: TailEvent): void {
  if (e.kind === 'rotated') {
    deps.stats.rotations += 1;
    deps.log.info({ file: e.file, how: e.how }, 'nova-compute log rotated');
  } else if (e.kind === 'lost') {
    deps.stats.lost += 1;
    deps.log.warn({ file: e.file, detail: e.detail }, 'nova-compute log lines could not be read');
  } else if (e.kind === 'recovered') {
    deps.log.info({ file: e.file, from: e.from, bytes: e.bytes }, 'read the end of a truncated nova-compute log from its copy');
  } else if (e.kind === 'overlong') {
    deps.log.debug({ file: e.file, bytes: e.bytes }, 'cut an overlong line');
  }
}
