import { checkMac } from '../health/checks/mac.js';
import type { MacProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe, innerTimeout } from '../health/probe.js';

/** C7 + C8: AppArmor and SELinux state for swtpm and denials in the kernel/audit logs. */
export const healthMacProbe = healthProbe<MacProbeData>({
  name: HEALTH_PROBE_NAMES.mac,
  title: 'Health: AppArmor / SELinux',
  description: 'swtpm AppArmor profile mode, SELinux mode/labels/modules, and swtpm denials in the kernel and audit logs',
  toggles: ['apparmor', 'selinux'],
  async run(ctx) {
    const h = ctx.config.health;
    const out = await checkMac({
      hostPath: ctx.hostPath,
      logFiles: h.macLogFiles,
      agentStateDir: ctx.config.stateDir,
      windowSeconds: h.logFailureWindowSeconds,
      maxBytesPerFile: h.logMaxBytesPerRun,
      apparmor: h.checks.apparmor,
      selinux: h.checks.selinux,
      signal: ctx.signal,
      timeoutMs: innerTimeout(ctx),
      swtpmPaths: [ctx.config.swtpm.stateDir, h.swtpmLogDir, h.swtpmRunDir],
      env: ctx.env,
      state: ctx.stateFiles,
    });
    return { checks: out.checks, totals: out.totals, active: out.active };
  },
});
