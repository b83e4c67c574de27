import type { AgentConfig } from './config/schema.js';
import type { AgentExtension } from './extension-api.js';

/**
 * One capability the agent can run, known without loading its code: the agent imports a
 * capability's module only when configuration enables it (start-up time and memory), and a
 * reload restarts it only when a section it reads changed.
 */
export interface ExtensionEntry {
  readonly name: string;
  /** Top-level configuration keys the capability reads; undefined = all of them. */
  readonly configKeys?: ReadonlyArray<keyof AgentConfig>;
  /** The same switch as the extension's own `enabled()`, readable before its module is loaded. */
  enabled(config: AgentConfig): boolean;
  /** A fresh instance (dynamic import: the module loads on first use). */
  load(): Promise<AgentExtension>;
}

/** Every extension the agent runs, listed explicitly so the wiring is visible in one place. */
export const extensionEntries: readonly ExtensionEntry[] = [
  {
    name: 'guest-restart-watcher',
    configKeys: ['guests', 'libvirt', 'stateDir', 'hostRoot'],
    enabled: (c) => c.guests.watcherEnabled,
    load: async () => new (await import('./guests/watcher.js')).GuestRestartWatcher(),
  },
  {
    name: 'nova-log',
    configKeys: ['novaLog', 'stateDir', 'hostRoot'],
    enabled: (c) => c.novaLog.source !== 'none',
    load: async () => new (await import('./logs/extension.js')).NovaLogExtension(),
  },
  {
    name: 'barbican-preflight',
    configKeys: ['barbican', 'openstack'],
    enabled: (c) => c.barbican.enabled,
    load: async () => new (await import('./barbican/extension.js')).BarbicanPreflightExtension(),
  },
  {
    name: 'placement',
    configKeys: ['placement', 'openstack', 'libvirt', 'hostRoot'],
    enabled: (c) => c.placement.enabled,
    load: async () => {
      const [{ PlacementReconcilerExtension }, { verdictFromResults }] = await Promise.all([import('./placement/extension.js'), import('./current-verdict.js')]);
      return new PlacementReconcilerExtension({ verdict: verdictFromResults });
    },
  },
];

/** An extension handed in ready-made (tests): always loaded, restarted on any change. */
export function entryFor(extension: AgentExtension): ExtensionEntry {
  return { name: extension.name, enabled: (c) => extension.enabled(c), load: async () => extension };
}

/** Instances of the extensions `config` enables, or of every extension without a config. */
export async function loadExtensions(config?: AgentConfig): Promise<AgentExtension[]> {
  return Promise.all(extensionEntries.filter((e) => !config || e.enabled(config)).map((e) => e.load()));
}
