import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import type { AgentExtension } from './extension-api.js';
import type { CheckSection, ProbeKey, ProbeResult } from './results.js';
import { loadExtensions } from './extension-list.js';
import { AgentError } from './errors.js';
import { collectInventory, inventoryOptions } from './guests/inventory.js';
import { preRebootFailure, preRebootReport, type PreRebootReport } from './guests/pre-reboot.js';
import { allProbes } from './probes/index.js';
import type { Probe } from './probes/types.js';
import { buildReport, type HostReport } from './report.js';
import { enabledProbes, ProbeScheduler } from './scheduler.js';
import { HostState } from './state.js';
import { hostPathResolver } from './util/hostpath.js';
import { RestartReasons } from './guests/reasons.js';
import { StateFiles } from './util/state-file.js';

export interface CheckOptions {
  config: AgentConfig;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  probes?: Probe[];
  extensions?: AgentExtension[];
  signal?: AbortSignal;
}

/** One shot: every enabled probe once (in dependency order), then each extension's one-shot view. */
export async function runCheck(options: CheckOptions): Promise<HostReport> {
  const { config, log } = options;
  const env = options.env ?? process.env;
  const state = new HostState();
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const known = options.probes ?? allProbes;
    const probes = enabledProbes(known, config);
    const hostPath = hostPathResolver(config.hostRoot);
    // The daemon owns the state files under stateDir: the check reads them and writes none.
    const stateFiles = new StateFiles({ log, readOnly: true });
    // Every known probe, so an extension may have one the configuration does not schedule run once.
    const scheduler = new ProbeScheduler({ probes: known, config, log, hostPath, env, state, signal: controller.signal, readOnlyState: true, stateFiles });
    await scheduler.runCycle();
    state.completeCycle();
    // The round just run is as fresh as a one-shot check needs: no probe runs twice.
    const refresh = <T>(key: ProbeKey<T>): Promise<ProbeResult<T> | undefined> => {
      const result = state.get(key);
      return result ? Promise.resolve(result) : scheduler.refresh(key);
    };
    const restartReasons = new RestartReasons();
    const extensions = (options.extensions ?? (await loadExtensions(config))).filter((e) => e.enabled(config) && e.checkOnce);
    const sections: CheckSection[] = [];
    for (const extension of extensions) {
      try {
        sections.push(await extension.checkOnce!({ config, log, hostPath, env, state, refresh, stateFiles: stateFiles.store(extension.name), restartReasons, signal: controller.signal }));
      } catch (err) {
        sections.push({ name: extension.name, ok: false, summary: `check failed: ${(err as Error).message}`, data: null });
      }
    }
    return buildReport(state, probes, sections);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    controller.abort(new Error('check finished'));
  }
}

/**
 * `check --pre-reboot`: only the guest inventory (two virsh calls and nova.conf), none of the
 * other probes, so a maintenance playbook gets its answer in about a second.
 */
export async function runPreRebootCheck(config: AgentConfig, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<PreRebootReport> {
  try {
    const inventory = await collectInventory(inventoryOptions(config, hostPathResolver(config.hostRoot), env, config.libvirt.timeoutSeconds * 1000, signal));
    return preRebootReport(inventory);
  } catch (err) {
    return preRebootFailure(err instanceof AgentError ? err.code : 'VTPM_ERR_GUEST_INVENTORY', (err as Error).message);
  }
}
