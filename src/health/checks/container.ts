import { readProcText } from '../proc-read.js';
import { LIBVIRTD, type LibvirtdProcess } from '../../host/libvirtd-location.js';
import { healthVersionsProbe } from './versions.js';
import { CAP_SYS_PTRACE, hasCap, parseCapEff } from '../parse/proc.js';
import { type MountEntry, mountFor, parseMountinfo } from '../../host/mountinfo.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { compareVersions, LIBVIRT_NO_PTRACE_NEEDED } from '../../host/versions.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { localCaStatedir, SWTPM_LOCALCA } from '../../host/swtpm-localca.js';
import { healthProbe } from '../probe.js';

export interface ContainerFacts {
  daemon: { pid: number; comm: string } | null;
  /** The daemon runs in a container (its root is not host PID 1's); null when that could not be told. */
  containerised: boolean | null;
  capEff: bigint | null;
  mounts: MountEntry[] | null;
}

/** Whether libvirtd runs in a container comes from the one rule (host/libvirtd-location.ts). */
export async function readContainerFacts(hostPath: HostPathResolver, daemon: LibvirtdProcess | null): Promise<ContainerFacts> {
  if (!daemon) return { daemon: null, containerised: null, capEff: null, mounts: null };
  const [status, mountinfo] = await Promise.all([readProcText(hostPath, daemon.pid, 'status'), readProcText(hostPath, daemon.pid, 'mountinfo')]);
  return {
    daemon: { pid: daemon.pid, comm: daemon.name },
    containerised: daemon.placement === 'unknown' ? null : daemon.placement === 'container',
    capEff: status ? parseCapEff(status) : null,
    mounts: mountinfo ? parseMountinfo(mountinfo) : null,
  };
}

/**
 * C14: libvirt in a container (KubeVirt, OpenStack-Helm, Atmosphere): libvirt < 8.1 needs
 * CAP_SYS_PTRACE to find swtpm's pid, and the TPM state, swtpm logs, local CA and secret store
 * must be host mounts or they vanish with the pod.
 */
export function evaluateContainer(f: ContainerFacts, libvirtVersion: string | null, dirs: string[]): CheckResult {
  if (!f.daemon) {
    return checkResult('container', [finding('VTPM_HEALTH_LIBVIRT_DAEMON_NOT_FOUND', 'warn', 'No libvirtd or virtqemud process is visible to the agent.')], { daemon: null });
  }
  const cannotRead = (what: string) =>
    finding('VTPM_HEALTH_CONTAINER_UNREADABLE_BY_AGENT', 'unknown', `The agent cannot read ${what} of ${f.daemon!.comm} (pid ${f.daemon!.pid}): whether it runs in a container, and how, is unknown.`, { subject: f.daemon!.comm });
  // Could not compare mount namespaces: unknown, never "not applicable".
  if (f.containerised === null) return checkResult('container', [cannotRead('/proc/<pid>/root or mountinfo (where it runs)')], { daemon: f.daemon, containerised: null });
  if (!f.containerised) return checkResult('container', [], { daemon: f.daemon, containerised: false }, 'not-applicable');
  const findings: Finding[] = [];
  const old = libvirtVersion === null || compareVersions(libvirtVersion, LIBVIRT_NO_PTRACE_NEEDED) < 0;
  if (old && f.capEff === null) findings.push(cannotRead('/proc/<pid>/status (its capabilities)'));
  if (f.mounts === null) findings.push(cannotRead('/proc/<pid>/mountinfo (its mounts)'));
  if (old && f.capEff !== null && !hasCap(f.capEff, CAP_SYS_PTRACE)) {
    findings.push(finding('VTPM_HEALTH_CONTAINER_NO_PTRACE', 'fail', `${f.daemon.comm} (pid ${f.daemon.pid}) runs in a container without CAP_SYS_PTRACE and libvirt is ${libvirtVersion ?? 'of unknown version'}: vTPM guests fail with "Could not get process id of swtpm".`, { subject: f.daemon.comm }));
  }
  const notMounted: string[] = [];
  if (f.mounts) {
    for (const dir of dirs) {
      const m = mountFor(f.mounts, dir);
      // Covered only by the container's own root filesystem: not persisted on the host.
      if (!m || m.mountPoint === '/') notMounted.push(dir);
    }
  }
  for (const dir of notMounted) {
    findings.push(finding('VTPM_HEALTH_CONTAINER_DIR_NOT_HOST_MOUNT', 'warn', `${dir} is not a host mount in the libvirt container; its contents are lost when the container restarts.`, { subject: dir }));
  }
  return checkResult('container', findings, { daemon: f.daemon, containerised: true, capSysPtrace: f.capEff === null ? null : hasCap(f.capEff, CAP_SYS_PTRACE), notMounted });
}

/** C14: a containerised libvirt's capabilities and host mounts for TPM state, logs, CA and secrets. */
export const healthContainerProbe = healthProbe<HealthProbeData>({
  name: 'health-container',
  title: 'Health: containerised libvirt',
  description: 'libvirt daemon mount namespace, CapEff (SYS_PTRACE for libvirt < 8.1) and host mounts of state, log, CA and secret dirs',
  toggles: ['container'],
  after: [healthVersionsProbe.name],
  async run(ctx, results) {
    const facts = await readContainerFacts(ctx.hostPath, await ctx.facts.get(LIBVIRTD));
    const libvirt = results.get(healthVersionsProbe.name)?.data?.versions.libvirt ?? null;
    const h = ctx.config.health;
    // swtpm_setup.conf as libvirtd sees it (its container's root), as the local-CA check reads it.
    const ca = localCaStatedir(await ctx.facts.get(SWTPM_LOCALCA));
    const dirs = [ctx.config.swtpm.stateDir, h.swtpmLogDir, h.libvirtSecretsDir, ...(ca ? [ca] : [])];
    return { checks: [evaluateContainer(facts, libvirt, dirs)] };
  },
});
