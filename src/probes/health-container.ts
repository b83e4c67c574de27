import { evaluateContainer, readContainerFacts } from '../health/checks/container.js';
import { localCaStatedir } from '../health/checks/localca.js';
import type { VersionsProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe } from '../health/probe.js';
import { findLibvirtDaemon, listProcesses } from '../health/proc-read.js';
import type { HealthProbeData } from '../health/types.js';

/** C14: a containerised libvirt's capabilities and host mounts for TPM state, logs, CA and secrets. */
export const healthContainerProbe = healthProbe<HealthProbeData>({
  name: HEALTH_PROBE_NAMES.container,
  title: 'Health: containerised libvirt',
  description: 'libvirt daemon mount namespace, CapEff (SYS_PTRACE for libvirt < 8.1) and host mounts of state, log, CA and secret dirs',
  toggles: ['container'],
  after: [HEALTH_PROBE_NAMES.versions],
  async run(ctx, results) {
    const daemon = findLibvirtDaemon(await listProcesses(ctx.hostPath));
    const facts = await readContainerFacts(ctx.hostPath, daemon);
    const libvirt = results.get<VersionsProbeData>(HEALTH_PROBE_NAMES.versions)?.data?.versions.libvirt ?? null;
    const h = ctx.config.health;
    const ca = await localCaStatedir(h.swtpmSetupConf, ctx.hostPath);
    const dirs = [ctx.config.swtpm.stateDir, h.swtpmLogDir, h.libvirtSecretsDir, ...(ca ? [ca] : [])];
    return { checks: [evaluateContainer(facts, libvirt, dirs)] };
  },
});
