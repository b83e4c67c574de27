/**
 * Who the emulation check runs as. libvirt starts swtpm as `swtpm_user:swtpm_group`, so when the
 * agent is root the check does the same (a permission problem then shows as libvirt meets it);
 * otherwise it runs as the agent's own user.
 */
import { AgentError } from '../errors.js';
import { resolveGroup, resolveUser, type AccountsRead } from '../host/accounts.js';

export type RunAs = 'auto' | 'swtpm-user' | 'self';

export interface Principal {
  user: string;
  group: string;
  uid: number;
  gid: number;
}

/** The running process's uid, or null where the platform has none. */
export function currentUid(): number | null {
  return typeof process.getuid === 'function' ? process.getuid() : null;
}

/**
 * null means "run as the agent itself". `swtpm-user` when not root cannot switch users, so it
 * is an error rather than a silent downgrade.
 */
export async function runAsPrincipal(
  runAs: RunAs,
  names: { user: string; group: string },
  /** passwd/group as libvirtd sees them (the round's SWTPM_PRINCIPAL read them). */
  read: AccountsRead,
  uid: number | null = currentUid(),
): Promise<Principal | null> {
  const root = uid === 0;
  if (runAs === 'self' || (runAs === 'auto' && !root)) return null;
  if (!root) {
    throw new AgentError('VTPM_ERR_SWTPM_START', `emulation.runAs is 'swtpm-user' but the agent is not root (uid ${uid}) and cannot switch to '${names.user}'`, {
      details: { uid },
    });
  }
  // The uid/gid libvirt would run swtpm as: looked up where libvirtd lives (in Atmosphere the
  // swtpm user exists only in the libvirt container).
  const u = resolveUser(read.accounts, names.user);
  if (!u) throw unresolved('user', names.user, read.passwdError, '/etc/passwd');
  const g = resolveGroup(read.accounts, names.group);
  if (!g) throw unresolved('group', names.group, read.groupError, '/etc/group');
  return { user: names.user, group: names.group, uid: u.uid, gid: g.gid };
}

function unresolved(kind: 'user' | 'group', name: string, readError: string | null, file: string): AgentError {
  const message = readError ? `cannot read ${file} to resolve swtpm ${kind} '${name}': ${readError}` : `swtpm ${kind} '${name}' does not exist (${file})`;
  return new AgentError('VTPM_ERR_SWTPM_START', message, { details: { file, name, kind } });
}
