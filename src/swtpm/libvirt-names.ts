import type { AgentConfig } from '../config/schema.js';
import { loadPrincipal } from '../health/principal.js';
import { libvirtViewResolver } from '../util/container-paths.js';
import type { HostPathResolver } from '../util/hostpath.js';

export type SwtpmNamesSource = 'config' | 'qemu.conf' | 'libvirt-default';

export interface SwtpmNames {
  user: string;
  group: string;
  source: SwtpmNamesSource;
}

/**
 * The user and group libvirt starts swtpm as: `swtpm.user`/`swtpm.group` when configured,
 * otherwise libvirt's own choice — qemu.conf's swtpm_user/swtpm_group, read where libvirtd lives,
 * else libvirt's default (tss, or root where no tss account exists).
 */
export async function swtpmNames(config: AgentConfig, hostPath: HostPathResolver): Promise<SwtpmNames> {
  const { user, group } = config.swtpm;
  if (user !== null && group !== null) return { user, group, source: 'config' };
  const res = await loadPrincipal(config.health, await libvirtViewResolver(hostPath));
  const libvirtUser = res.principal?.user ?? res.unknownUser ?? 'tss';
  const libvirtGroup = res.principal?.group ?? res.unknownGroup ?? 'tss';
  const fromConf = res.principal?.userSource === 'qemu.conf' || res.unknownUser !== null;
  return {
    user: user ?? libvirtUser,
    group: group ?? libvirtGroup,
    source: user !== null || group !== null ? 'config' : fromConf ? 'qemu.conf' : 'libvirt-default',
  };
}
