import { stat } from 'node:fs/promises';
import { release as kernelRelease } from 'node:os';
import { readBootTime } from '../host/boot.js';
import { Gauge, type Registry } from 'prom-client';
import { groupByName, groupName, userByName, userName } from '../host/accounts.js';
import { hardwareVirtualization } from '../host/cpu.js';
import { hostMemory } from '../host/memory.js';
import { readOsRelease } from '../host/os-release.js';
import { SWTPM_PRINCIPAL, swtpmNames } from '../host/swtpm-principal.js';
import { compareVersions, LIBVIRT_KEEP_TPM } from '../host/versions.js';
import { HOST, LIBVIRT, type HostPrerequisites, type Reason } from '../libvirt/facts.js';
import type { Probe } from './types.js';
import { METRIC_PREFIX } from '../metric-prefix.js';

function modeString(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Host prerequisites Nova and libvirt rely on: the swtpm principal, state dir, /dev/kvm, versions. */
export const hostProbe: Probe<HostPrerequisites> = {
  name: HOST,
  description: 'swtpm user/group, swtpm state directory, /dev/kvm, libvirt/QEMU minimums, host facts',
  after: [LIBVIRT],
  async run(ctx, results) {
    const { stateDir } = ctx.config.swtpm;
    // libvirt starts swtpm as this principal, so it is looked up where libvirtd lives: in Atmosphere
    // the swtpm user exists only in the libvirt container's /etc/passwd.
    const loaded = await ctx.facts.get(SWTPM_PRINCIPAL);
    const names = swtpmNames(ctx.config, loaded);
    const { user, group } = names;
    const { accounts } = loaded;
    const uid = userByName(accounts, user)?.uid ?? null;
    const gid = groupByName(accounts, group)?.gid ?? null;
    const problems: string[] = [];
    let owner: string | null = null;
    let mode: string | null = null;
    let exists = false;
    try {
      const st = await stat(ctx.hostPath(stateDir));
      exists = st.isDirectory();
      if (!exists) problems.push(`${stateDir} is not a directory`);
      owner = `${userName(accounts, st.uid)}:${groupName(accounts, st.gid)}`;
      mode = modeString(st.mode);
      // libvirt creates it 0711 root:root; per-guest dirs below are chowned to the swtpm user.
      if (st.mode & 0o002) problems.push(`${stateDir} is world-writable (mode ${mode})`);
      if (!(st.mode & 0o001)) problems.push(`${stateDir} is not traversable by others (mode ${mode}); the swtpm user cannot reach its state`);
    } catch {
      exists = false;
    }
    let kvm = false;
    try {
      kvm = (await stat(ctx.hostPath('/dev/kvm'))).isCharacterDevice();
    } catch {
      kvm = false;
    }
    const libvirt = results.get(LIBVIRT)?.data;
    const warnings: Reason[] = [];
    if (libvirt?.libvirtVersion && compareVersions(libvirt.libvirtVersion, LIBVIRT_KEEP_TPM) < 0) {
      warnings.push({
        code: 'LIBVIRT_TPM_STATE_ERASURE_RISK',
        severity: 'warning',
        message: `libvirt ${libvirt.libvirtVersion} < ${LIBVIRT_KEEP_TPM}: a hard reboot or power-on can erase vTPM state (Nova bug 2118888)`,
      });
    }
    for (const problem of problems) warnings.push({ code: 'SWTPM_STATE_DIR_PERMISSIONS', severity: 'warning', message: problem });
    if (names.problem) warnings.push({ code: 'SWTPM_PRINCIPAL_ASSUMED', severity: 'warning', message: names.problem });
    if (!kvm) warnings.push({ code: 'KVM_MISSING', severity: 'warning', message: '/dev/kvm is absent: guests run under TCG emulation (slow)' });
    // Host facts are informative: a failure there must not fail the probe. The OS comes from the
    // host's os-release (under the host root), not systeminformation's view of the agent's own
    // filesystem, which in a pod is the image's; boot time, memory and CPU flags are kernel-wide. The
    // boot time is /proc/stat's btime, read where the restart watcher reads it (one home, one value).
    const [os, virtualization, memory, bootTime] = await Promise.all([
      readOsRelease(ctx.hostPath),
      hardwareVirtualization(),
      hostMemory(),
      readBootTime(ctx.hostPath(ctx.config.guests.procStatPath)),
    ]);
    return {
      swtpmUser: { name: user, exists: uid !== null, uid },
      swtpmGroup: { name: group, exists: gid !== null, gid },
      stateDir: { path: stateDir, exists, owner, mode, problems },
      kvm,
      libvirtVersion: libvirt?.libvirtVersion ?? null,
      qemuVersion: libvirt?.qemuVersion ?? null,
      warnings,
      bootTime,
      os,
      kernel: kernelRelease(),
      hardwareVirtualization: virtualization,
      memory,
    };
  },
  registerMetrics(registry: Registry, results) {
    new Gauge({
      name: `${METRIC_PREFIX}host_prerequisite_ok`,
      help: '1 when a host prerequisite for vTPM holds (swtpm_user, swtpm_group, state_dir, kvm).',
      labelNames: ['prerequisite'],
      registers: [registry],
      collect() {
        this.reset();
        const data = results.get(HOST)?.data;
        if (!data) return;
        this.set({ prerequisite: 'swtpm_user' }, data.swtpmUser.exists ? 1 : 0);
        this.set({ prerequisite: 'swtpm_group' }, data.swtpmGroup.exists ? 1 : 0);
        this.set({ prerequisite: 'state_dir' }, data.stateDir.exists && data.stateDir.problems.length === 0 ? 1 : 0);
        this.set({ prerequisite: 'kvm' }, data.kvm ? 1 : 0);
      },
    });
  },
};
