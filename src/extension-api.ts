import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from './config/schema.js';
import type { CheckSection, StateView } from './results.js';
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
