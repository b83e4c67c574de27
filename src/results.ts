/**
 * The bottom layer: what probes produce and what everything above reads. Imports nothing from the
 * project, so any module may depend on it without creating a cycle.
 */

/**
 * A probe's name that also carries the type of its data, so `results.get(EMULATION)` is typed
 * without a cast. At run time it is just the string.
 */
export type ProbeKey<T> = string & { readonly __data?: T };

export function probeKey<T>(name: string): ProbeKey<T> {
  return name as ProbeKey<T>;
}

export interface ProbeFailure {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface ProbeResult<T = unknown> {
  probe: string;
  ok: boolean;
  data?: T;
  error?: ProbeFailure;
  startedAt: number;
  durationSeconds: number;
  /** Unix ms of the latest successful run, carried across failures. */
  lastSuccessAt: number | null;
}

/** Read-only view of the latest results, for probes that build on others. */
export interface ProbeResults {
  get<T>(key: ProbeKey<T>): ProbeResult<T> | undefined;
}

/**
 * What extensions and reporters see of the agent's state: the latest results and a way to hear of
 * new ones, never a way to write.
 */
export interface StateView extends ProbeResults {
  all(): ProbeResult[];
  /** Bumped on every write, so consumers can cache what they derive. */
  readonly revision: number;
  readonly startedAt: number;
  readonly completedCycles: number;
  on(event: 'result', listener: (result: ProbeResult) => void): this;
  on(event: 'cycle', listener: (cycles: number) => void): this;
  off(event: 'result', listener: (result: ProbeResult) => void): this;
  off(event: 'cycle', listener: (cycles: number) => void): this;
}

/** A section of `vtpm-agent check` output and of `/status`. */
export interface CheckSection {
  name: string;
  /** true: all good; false: something is wrong; null: not applicable / not configured. */
  ok: boolean | null;
  summary: string;
  /** Optional table for the human output; the first row is the header. */
  table?: string[][];
  /** The machine-readable detail for `--json` and `/status`. */
  data: unknown;
}
