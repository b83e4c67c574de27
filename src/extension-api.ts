import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from './config/schema.js';
import type { CheckSection, ProbeKey, ProbeResult, StateView } from './results.js';
import type { HostPathResolver } from './util/hostpath.js';
import type { RestartReasons } from './guests/reasons.js';
import type { StateStore } from './util/state-file.js';

export interface ExtensionContext {
  config: AgentConfig;
  log: Logger;
  hostPath: HostPathResolver;
  env: NodeJS.ProcessEnv;
  /** Latest probe results, read-only and subscribable; extensions publish their own via `status()`. */
  state: StateView;
  /**
   * Runs a probe now and resolves with its fresh result, which `state` then holds too (one
   * inventory for everyone, never a private copy). A run in flight is waited for and followed by
   * one more, shared by every request made meanwhile; a probe its configuration does not schedule
   * still runs. Undefined once the agent is stopping (or for a probe the agent does not have). In
   * `vtpm-agent check`: the result of the check's own probe round.
   */
  refresh<T>(key: ProbeKey<T>): Promise<ProbeResult<T> | undefined>;
  /** This extension's files under the state directory (read-only in `vtpm-agent check`). */
  stateFiles: StateStore;
  /** Why a guest failed to restart, as other extensions know it (this agent's registry). */
  restartReasons: RestartReasons;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
}

/**
 * A long-running capability that is not a simple scheduled probe (zigbee2mqtt's extensions):
 * the guest watcher, the log follower, the Placement reconciler. `start` must not throw when a
 * dependency is down — the extension retries by itself and reports the state in `status()`.
 */
export interface AgentExtension {
  readonly name: string;
  /** false disables the extension from configuration. */
  enabled(config: AgentConfig): boolean;
  start(ctx: ExtensionContext): Promise<void>;
  /** Stops timers and children; must resolve within a couple of seconds. */
  stop(): Promise<void>;
  /** Snapshot for `/status` (cheap, from memory). */
  status(): CheckSection;
  /** Registers metrics whose `collect()` reads memory only — a scrape never does I/O. */
  registerMetrics?(registry: Registry): void;
  /** For `/readyz`; absent means always ready. */
  readiness?(): { ready: boolean; detail?: string };
  /** One-shot for `vtpm-agent check`: do the work once, without the daemon's schedules. */
  checkOnce?(ctx: ExtensionContext): Promise<CheckSection>;
}
