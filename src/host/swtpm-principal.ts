/**
 * The swtpm principal, resolved once for everyone: libvirt starts swtpm as qemu.conf's
 * swtpm_user:swtpm_group (else tss, else root), looked up where libvirtd lives. The host probe,
 * the emulation check and the health checks all read it from here, once per probe round
 * (SWTPM_PRINCIPAL).
 */
import { confString, parseLibvirtConf, type LibvirtConf } from '../libvirt/qemu-conf.js';
import { readAccounts, resolveGroup, type AccountsRead, resolveUser, supplementaryGids, userByName, groupByName, type Accounts } from './accounts.js';
import { pathInfo, readText } from './fsinfo.js';
import { hostFact } from './facts.js';
import type { AgentConfig } from '../config/schema.js';
import { LIBVIRT_VIEW, libvirtViewResolver } from './libvirtd-location.js';
import type { HostPathResolver } from '../util/hostpath.js';

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

/**
 * The principal as libvirtd sees it: qemu.conf and the accounts are read where libvirtd lives
 * (through its container's root when it runs in one; `libvirtView` when already resolved).
 */
export async function loadPrincipal(cfg: AgentConfig['health'], hostPath: HostPathResolver, libvirtView?: HostPathResolver): Promise<LoadedPrincipal> {
  const view = libvirtView ?? (await libvirtViewResolver(hostPath));
  // Unreadable passwd/group leave no accounts, and libvirt's rules would then say root: a guess
  // that must be reported as one, not taken as libvirt's answer.
  const [passwd, group] = await Promise.all([accountsFile(cfg.passwdFile, view, hostPath), accountsFile(cfg.groupFile, view, hostPath)]);
  const read = await readAccounts(passwd, group);
  const conf_ = await readText(view(cfg.qemuConf));
  // A missing qemu.conf means libvirt's built-in defaults; an unreadable one is reported by C3.
  const conf = conf_.text !== null ? parseLibvirtConf(conf_.text) : null;
  const resolved = resolvePrincipal(conf, read.accounts);
  return {
    ...resolved,
    qemuConfError: conf_.error === 'ENOENT' ? null : conf_.error,
    qemuConfMalformedLines: conf?.malformedLines ?? 0,
    accounts: read.accounts,
    accountsRead: read,
    accountsError: accountsReadError(cfg, read),
  };
}

/**
 * passwd/group as libvirtd sees them; the host's when libvirtd's container has none (a container
 * without its own accounts shares the host's, as the agent's probes have always read them).
 */
async function accountsFile(file: string, view: HostPathResolver, hostPath: HostPathResolver): Promise<string> {
  // libvirtd on the host: the view is the host resolver itself.
  if (view === hostPath) return hostPath(file);
  const inView = view(file);
  return (await pathInfo(inView)).exists ? inView : hostPath(file);
}

export type LoadedPrincipal = PrincipalResolution & {
  accounts: Accounts;
  /** passwd/group as read (with each file's error), for callers that name the file that failed. */
  accountsRead: AccountsRead;
  accountsError: string | null;
};

/** The round's swtpm principal, read where the round's LIBVIRT_VIEW says libvirtd lives. */
export const SWTPM_PRINCIPAL = hostFact<LoadedPrincipal>('swtpm-principal', async (facts) =>
  loadPrincipal(facts.config.health, facts.hostPath, await facts.get(LIBVIRT_VIEW)),
);

function accountsReadError(cfg: AgentConfig['health'], read: AccountsRead): string | null {
  const parts = [read.passwdError && `${cfg.passwdFile}: ${read.passwdError}`, read.groupError && `${cfg.groupFile}: ${read.groupError}`].filter(Boolean);
  return parts.length ? parts.join(', ') : null;
}

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
export function swtpmNames(config: AgentConfig, res: LoadedPrincipal): SwtpmNames {
  const { user, group } = config.swtpm;
  if (user !== null && group !== null) return { user, group, source: 'config', problem: null };
  // Each name on its own: one unknown account in qemu.conf must not hide the other, valid one.
  const libvirtUser = res.principal?.user ?? res.userSpec ?? 'tss';
  const libvirtGroup = res.principal?.group ?? res.groupSpec ?? 'tss';
  const fromConf = res.userSpec !== null || res.groupSpec !== null;
  const problem = res.qemuConfError
    ? `${config.health.qemuConf} cannot be read (${res.qemuConfError}): the swtpm user and group are assumed to be libvirt's default (${libvirtUser}:${libvirtGroup}); set swtpm.user and swtpm.group`
    : res.accountsError
      ? `passwd/group cannot be read (${res.accountsError}): the swtpm user and group are assumed to be ${libvirtUser}:${libvirtGroup}; set swtpm.user and swtpm.group`
      : null;
  return {
    user: user ?? libvirtUser,
    group: group ?? libvirtGroup,
    source: user !== null || group !== null ? 'config' : problem ? 'assumed' : fromConf ? 'qemu.conf' : 'libvirt-default',
    problem: user !== null && group !== null ? null : problem,
  };
}
