import { scanLogs } from '../health/checks/logs.js';
import { GUEST_INVENTORY } from '../guests/types.js';
import { guestsFromResults } from '../health/guests.js';
import type { LogsProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe } from '../health/probe.js';
import { finding } from '../health/reasons.js';
import { checkResult, type CheckResult } from '../health/types.js';
import { libvirtViewResolver } from '../util/container-paths.js';

/** C10: failure lines in each vTPM guest's swtpm and QEMU logs, and TPM reset detection. */
export const healthLogsProbe = healthProbe<LogsProbeData>({
  name: HEALTH_PROBE_NAMES.logs,
  title: 'Health: guest logs and TPM resets',
  description: 'follows <domain>-swtpm.log and <domain>.log for the failure-modes §0 lines; counts TPM re-creations per guest',
  toggles: ['logs', 'tpmReset'],
  after: [GUEST_INVENTORY],
  async run(ctx, results) {
    const h = ctx.config.health;
    const view = guestsFromResults(results);
    if (!view) {
      const gap = finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'warn', 'The guest inventory is not available, so guest logs cannot be attributed.');
      const checks: CheckResult[] = [];
      if (h.checks.logs) checks.push(checkResult('logs', [gap]));
      if (h.checks.tpmReset) checks.push(checkResult('tpm-reset', [gap]));
      return { checks, guests: [] };
    }
    const out = await scanLogs({
      guests: view.guests,
      swtpmStateDir: ctx.config.swtpm.stateDir,
      swtpmLogDir: h.swtpmLogDir,
      qemuLogDir: h.qemuLogDir,
      agentStateDir: ctx.config.stateDir,
      // Logs and state as libvirtd sees them (in Atmosphere /var/log/swtpm is inside its container).
      hostPath: await libvirtViewResolver(ctx.hostPath),
      maxBytesPerFile: h.logMaxBytesPerRun,
      windowSeconds: h.logFailureWindowSeconds,
      shrinkRatio: h.stateShrinkRatio,
      signal: ctx.signal,
      state: ctx.stateFiles,
    });
    const checks: CheckResult[] = [];
    if (h.checks.logs) checks.push(out.logs);
    if (h.checks.tpmReset) checks.push(out.reset);
    return { checks, guests: out.guests };
  },
});
