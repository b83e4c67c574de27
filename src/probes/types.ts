import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import type { CheckSection, ProbeKey, ProbeResult, ProbeResults } from '../results.js';
import type { HostFacts } from '../host/facts.js';
import type { HostPathResolver } from '../util/hostpath.js';
import type { StateStore } from '../util/state-file.js';

/** What every probe gets: cancellation, logging, configuration and host-path resolution. */
export interface ProbeContext {
  /** Aborted at the probe's timeout or at agent shutdown; pass it to every external call. */
  signal: AbortSignal;
  log: Logger;
  config: AgentConfig;
  hostPath: HostPathResolver;
  /** Environment for child processes (tests point PATH elsewhere). */
  env: NodeJS.ProcessEnv;
  /** Milliseconds left before the probe's timeout; use it to size inner timeouts. */
  remainingMs(): number;
  /**
   * One-shot `check`: read the daemon's state files but never write, create or move them (the
   * daemon owns them, and a check run as root must not leave root-owned copies behind).
   */
  readOnlyState: boolean;
  /** This probe's files under the state directory (read-only in a one-shot check). */
  stateFiles: StateStore;
  /** The round's host facts (src/host/facts.ts): read them here, not from the host, so a round reads each once. */
  facts: HostFacts;
}

/**
 * One probe, one job (node_exporter's collector). `run` returns typed data; it may throw, and the
 * runner turns that into a failed result — a probe failure is data, never a crash.
 */
export interface Probe<T = unknown> {
  /** The probe's name, typed with its data: others read the result as `results.get(probe.name)`. */
  readonly name: ProbeKey<T>;
  readonly description: string;
  /** node-cron expression; the agent's `probes.schedule` when absent. */
  schedule?(config: AgentConfig): string;
  /** Hard limit in ms; `probes.timeoutSeconds` when absent. */
  timeoutMs?(config: AgentConfig): number;
  /** Names of probes whose latest results this probe reads (they run first in a cycle). */
  readonly after?: readonly string[];
  /** false turns the probe off by configuration. */
  enabled?(config: AgentConfig): boolean;
  run(ctx: ProbeContext, results: ProbeResults): Promise<T>;
  /**
   * Metrics beyond the runner's generic success/duration gauges. `collect()` must read only the
   * latest result via `results.get(name)`: a scrape never runs the probe.
   */
  registerMetrics?(registry: Registry, results: ProbeResults): void;
  /** A section for `vtpm-agent check` and `/status`, built from the latest result. */
  report?(result: ProbeResult<T> | undefined): CheckSection;
}
