/**
 * Who the emulation check runs as. libvirt starts swtpm as `swtpm_user:swtpm_group`, so when the
 * agent is root the check does the same (a permission problem then shows as libvirt meets it);
 * otherwise it runs as the agent's own user.
 */
import { readFile } from 'node:fs/promises';
import { AgentError } from '../errors.js';
import type { HostPathResolver } from '../util/hostpath.js';
import { libvirtViewResolver } from '../util/container-paths.js';

export type RunAs = 'auto' | 'swtpm-user' | 'self';

export interface Principal {
  user: string;
  group: string;
  uid: number;
  gid: number;
}

export interface DbEntry {
  name: string;
  id: number;
}

/**
 * Parses passwd(5) or group(5) text: `name:x:id:...`. Comments, blank lines and malformed lines
 * are skipped (a broken line must not hide the rest); never throws.
 */
export function parseIdDatabase(text: string): DbEntry[] {
  const out: DbEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 3) continue;
    const name = fields[0]!;
    const idText = fields[2]!;
    if (!name || !/^\d{1,10}$/.test(idText)) continue;
    const id = Number(idText);
    if (id > 0xffffffff) continue;
    out.push({ name, id });
  }
  return out;
}

async function lookup(file: string, name: string, kind: 'user' | 'group'): Promise<number> {
  if (/^\d+$/.test(name)) return Number(name);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AgentError('VTPM_ERR_SWTPM_START', `cannot read ${file} to resolve swtpm ${kind} '${name}': ${(err as Error).message}`, {
      details: { file, name },
    });
  }
  const entry = parseIdDatabase(text).find((e) => e.name === name);
  if (!entry) {
    throw new AgentError('VTPM_ERR_SWTPM_START', `swtpm ${kind} '${name}' does not exist (${file})`, { details: { file, name, kind } });
  }
  return entry.id;
}

/** The running process's uid, or null where the platform has none. */
export function currentUid(): number | null {
  return typeof process.getuid === 'function' ? process.getuid() : null;
}

/**
 * null means "run as the agent itself". `swtpm-user` when not root cannot switch users, so it
 * is an error rather than a silent downgrade.
 */
export async function resolvePrincipal(
  runAs: RunAs,
  names: { user: string; group: string },
  hostPath: HostPathResolver,
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
  const libvirtView = await libvirtViewResolver(hostPath);
  const [u, g] = await Promise.all([
    lookup(libvirtView('/etc/passwd'), names.user, 'user'),
    lookup(libvirtView('/etc/group'), names.group, 'group'),
  ]);
  return { user: names.user, group: names.group, uid: u, gid: g };
}
