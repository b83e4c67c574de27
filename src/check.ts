import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import type { AgentExtension } from './extension-api.js';
import type { CheckSection, ProbeKey, ProbeResult } from './results.js';
import { loadExtensions } from './extension-list.js';
import { GUEST_INVENTORY } from './guests/types.js';
import { guestInventoryProbe } from './probes/guest-inventory.js';
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
 * `check --pre-reboot`: only the guest-inventory probe (two virsh calls and nova.conf), none of the
 * others, so a maintenance playbook gets its answer in about a second. The same probe the daemon
 * runs, with its timeout and output caps: one inventory code path.
 */
export async function runPreRebootCheck(config: AgentConfig, log: Logger, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<PreRebootReport> {
  const state = new HostState();
  const scheduler = new ProbeScheduler({
    probes: [guestInventoryProbe],
    config,
    log,
    hostPath: hostPathResolver(config.hostRoot),
    env,
    state,
    signal: signal ?? new AbortController().signal,
    readOnlyState: true,
    stateFiles: new StateFiles({ log, readOnly: true }),
  });
  const result = await scheduler.refresh(GUEST_INVENTORY);
  if (result?.ok && result.data) return preRebootReport(result.data);
  return preRebootFailure(result?.error?.code ?? 'VTPM_ERR_GUEST_INVENTORY', result?.error?.message ?? 'the guest inventory was not read (interrupted)');
}
