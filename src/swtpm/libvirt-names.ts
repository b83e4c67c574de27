import type { AgentConfig } from '../config/schema.js';
import { loadPrincipal } from '../health/principal.js';
import { libvirtViewResolver } from '../util/container-paths.js';
import type { HostPathResolver } from '../util/hostpath.js';

export type SwtpmNamesSource = 'config' | 'qemu.conf' | 'libvirt-default' | 'assumed';

export interface SwtpmNames {
  user: string;
  group: string;
  source: SwtpmNamesSource;
  /** Why the names are a guess (qemu.conf unreadable), for the verdict's warnings. */
  problem: string | null;
}

/**
 * The user and group libvirt starts swtpm as: `swtpm.user`/`swtpm.group` when configured,
 * otherwise libvirt's own choice — qemu.conf's swtpm_user/swtpm_group, read where libvirtd lives,
 * else libvirt's default (tss, or root where no tss account exists). Debian ships qemu.conf 0600
 * root: an agent running unprivileged cannot read it, and then says that it assumed the default.
 */
export async function swtpmNames(config: AgentConfig, hostPath: HostPathResolver): Promise<SwtpmNames> {
  const { user, group } = config.swtpm;
  if (user !== null && group !== null) return { user, group, source: 'config', problem: null };
  const res = await loadPrincipal(config.health, await libvirtViewResolver(hostPath));
  // Each name on its own: one unknown account in qemu.conf must not hide the other, valid one.
  const libvirtUser = res.principal?.user ?? res.userSpec ?? 'tss';
  const libvirtGroup = res.principal?.group ?? res.groupSpec ?? 'tss';
  const fromConf = res.userSpec !== null || res.groupSpec !== null;
  const problem = res.qemuConfError
    ? `${config.health.qemuConf} cannot be read (${res.qemuConfError}): the swtpm user and group are assumed to be libvirt's default (${libvirtUser}:${libvirtGroup}); set swtpm.user and swtpm.group`
    : null;
  return {
    user: user ?? libvirtUser,
    group: group ?? libvirtGroup,
    source: user !== null || group !== null ? 'config' : problem ? 'assumed' : fromConf ? 'qemu.conf' : 'libvirt-default',
    problem: user !== null && group !== null ? null : problem,
  };
}
