import { checkBinaries } from '../health/checks/binaries.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe, innerTimeout } from '../health/probe.js';
import { findLibvirtDaemon, listProcesses } from '../health/proc-read.js';
import type { HealthProbeData } from '../health/types.js';

export interface BinariesProbeData extends HealthProbeData {
  socketFeatures: string[] | null;
  setupFeatures: string[] | null;
  swtpmVersion: string | null;
  /** Resolved binary paths as libvirt sees them. */
  resolved: Record<string, string | null>;
}

/** C1 + C2: swtpm helpers on libvirt's own PATH and the capabilities encrypted vTPMs need. */
export const healthBinariesProbe = healthProbe<BinariesProbeData>({
  name: HEALTH_PROBE_NAMES.binaries,
  title: 'Health: swtpm binaries and capabilities',
  description: "swtpm, swtpm_setup, swtpm_ioctl and certificate helpers on libvirt's PATH; cmdarg-pwd-fd/pwdfile-fd",
  toggles: ['binaries', 'capabilities'],
  async run(ctx) {
    const h = ctx.config.health;
    const daemon = h.pathSource === 'libvirt-daemon' ? findLibvirtDaemon(await listProcesses(ctx.hostPath)) : null;
    const out = await checkBinaries({
      pathSource: h.pathSource,
      daemon,
      agentPath: ctx.env.PATH,
      hostPath: ctx.hostPath,
      env: ctx.env,
      timeoutMs: innerTimeout(ctx),
      signal: ctx.signal,
      checkBinaries: h.checks.binaries,
      checkCapabilities: h.checks.capabilities,
    });
    return { checks: out.checks, socketFeatures: out.socketFeatures, setupFeatures: out.setupFeatures, swtpmVersion: out.swtpmVersion, resolved: out.resolved };
  },
});
