import { confString, parseLibvirtConf, type LibvirtConf } from './parse/libvirt-conf.js';
import { parseGroup, parsePasswd, resolveGroup, resolveUser, supplementaryGids, userByName, groupByName, type Accounts } from './parse/accounts.js';
import { readText } from './fsinfo.js';
import type { HostPathResolver } from '../util/hostpath.js';
import type { HealthConfig } from './config.js';

export type PrincipalSource = 'qemu.conf' | 'default' | 'root-fallback';

/** The user and group libvirt really runs swtpm and swtpm_setup as. */
export interface Principal {
  user: string;
  group: string;
  uid: number;
  gid: number;
  /** swtpm_group plus the user's supplementary groups (libvirt sets both). */
  gids: number[];
  userSource: PrincipalSource;
  groupSource: PrincipalSource;
}

export interface PrincipalResolution {
  /** null when qemu.conf names a user or group that does not exist (libvirt then refuses to load the QEMU driver). */
  principal: Principal | null;
  /** qemu.conf's swtpm_user / swtpm_group as written (null when not set). */
  userSpec: string | null;
  groupSpec: string | null;
  unknownUser: string | null;
  unknownGroup: string | null;
  qemuConfError: string | null;
  qemuConfMalformedLines: number;
}

/** libvirt's default swtpm principal (qemu_conf.c); root when no such account exists. */
const LIBVIRT_DEFAULT_SWTPM_ACCOUNT = 'tss';

export async function loadAccounts(cfg: HealthConfig, hostPath: HostPathResolver): Promise<Accounts> {
  const [p, g] = await Promise.all([readText(hostPath(cfg.passwdFile)), readText(hostPath(cfg.groupFile))]);
  return { users: p.text ? parsePasswd(p.text) : [], groups: g.text ? parseGroup(g.text) : [] };
}

/** Pure: qemu.conf settings + accounts → the effective principal, following libvirt's rules. */
export function resolvePrincipal(conf: LibvirtConf | null, accounts: Accounts): Omit<PrincipalResolution, 'qemuConfError' | 'qemuConfMalformedLines'> {
  const userSpec = conf ? confString(conf, 'swtpm_user') : null;
  const groupSpec = conf ? confString(conf, 'swtpm_group') : null;
  let user: { name: string; uid: number; gid: number } | undefined;
  let userSource: PrincipalSource;
  let unknownUser: string | null = null;
  if (userSpec !== null) {
    user = resolveUser(accounts, userSpec);
    userSource = 'qemu.conf';
    if (!user) unknownUser = userSpec;
  } else {
    user = userByName(accounts, LIBVIRT_DEFAULT_SWTPM_ACCOUNT);
    userSource = user ? 'default' : 'root-fallback';
    user ??= { name: 'root', uid: 0, gid: 0 };
  }
  let group: { name: string; gid: number } | undefined;
  let groupSource: PrincipalSource;
  let unknownGroup: string | null = null;
  if (groupSpec !== null) {
    group = resolveGroup(accounts, groupSpec);
    groupSource = 'qemu.conf';
    if (!group) unknownGroup = groupSpec;
  } else {
    group = groupByName(accounts, LIBVIRT_DEFAULT_SWTPM_ACCOUNT);
    groupSource = group ? 'default' : 'root-fallback';
    group ??= { name: 'root', gid: 0 };
  }
  if (!user || !group) return { principal: null, userSpec, groupSpec, unknownUser, unknownGroup };
  const gids = new Set<number>([group.gid, ...supplementaryGids(accounts, { name: user.name, uid: user.uid, gid: user.gid })]);
  return {
    principal: { user: user.name, group: group.name, uid: user.uid, gid: group.gid, gids: [...gids], userSource, groupSource },
    userSpec,
    groupSpec,
    unknownUser,
    unknownGroup,
  };
}

export async function loadPrincipal(cfg: HealthConfig, hostPath: HostPathResolver, accounts?: Accounts): Promise<PrincipalResolution & { accounts: Accounts }> {
  const acc = accounts ?? (await loadAccounts(cfg, hostPath));
  const read = await readText(hostPath(cfg.qemuConf));
  // A missing qemu.conf means libvirt's built-in defaults; an unreadable one is reported by C3.
  const conf = read.text !== null ? parseLibvirtConf(read.text) : null;
  const resolved = resolvePrincipal(conf, acc);
  return {
    ...resolved,
    qemuConfError: read.error === 'ENOENT' ? null : read.error,
    qemuConfMalformedLines: conf?.malformedLines ?? 0,
    accounts: acc,
  };
}
