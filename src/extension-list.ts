import type { AgentExtension } from './extension-api.js';
import { GuestRestartWatcher } from './guests/watcher.js';
import { NovaLogExtension } from './logs/extension.js';
import { BarbicanPreflightExtension } from './barbican/extension.js';
import { PlacementReconcilerExtension } from './placement/extension.js';
import { verdictFromResults } from './current-verdict.js';

/**
 * Every extension the agent runs, listed explicitly (one line each) so the wiring is visible in
 * one place. Each entry is a factory: a fresh instance per agent.
 */
export const extensionFactories: Array<() => AgentExtension> = [
  () => new GuestRestartWatcher(),
  () => new NovaLogExtension(),
  () => new BarbicanPreflightExtension(),
  () => new PlacementReconcilerExtension({ verdict: verdictFromResults }),
];
