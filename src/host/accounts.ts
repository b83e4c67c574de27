/**
 * The one passwd(5)/group(5) parser. The files are read directly (not NSS), so the agent sees the
 * host's accounts (or the libvirt container's) from a pod. Comments, blank and malformed lines are
 * skipped — a broken line must not hide the rest — and nothing here throws on bad input.
 */
import { readText } from './fsinfo.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface Accounts {
  users: PasswdEntry[];
  groups: GroupEntry[];
}

function fields(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/** A uid or gid: decimal, at most 32 bits. */
function id(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n <= 0xffffffff ? n : null;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of fields(text)) {
    const uid = id(f[2]);
    const gid = id(f[3]);
    if (f[0] && uid !== null && gid !== null) out.push({ name: f[0], uid, gid });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of fields(text)) {
    const gid = id(f[2]);
    if (f[0] && gid !== null) out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

export function userByName(a: Accounts, name: string): PasswdEntry | undefined {
  return a.users.find((u) => u.name === name);
}

export function groupByName(a: Accounts, name: string): GroupEntry | undefined {
  return a.groups.find((g) => g.name === name);
}

/** Accepts a name or `+<id>` (libvirt's numeric syntax) or a bare number. */
export function resolveUser(a: Accounts, spec: string): PasswdEntry | undefined {
  const num = /^\+?(\d+)$/.exec(spec);
  if (num) {
    const uid = Number.parseInt(num[1]!, 10);
    return a.users.find((u) => u.uid === uid) ?? { name: spec, uid, gid: uid };
  }
  return userByName(a, spec);
}

export function resolveGroup(a: Accounts, spec: string): GroupEntry | undefined {
  const num = /^\+?(\d+)$/.exec(spec);
  if (num) {
    const gid = Number.parseInt(num[1]!, 10);
    return a.groups.find((g) => g.gid === gid) ?? { name: spec, gid, members: [] };
  }
  return groupByName(a, spec);
}

export function userName(a: Accounts, uid: number): string {
  return a.users.find((u) => u.uid === uid)?.name ?? String(uid);
}

export function groupName(a: Accounts, gid: number): string {
  return a.groups.find((g) => g.gid === gid)?.name ?? String(gid);
}

/** Primary group plus the groups listing the user as a member (what initgroups() gives a process). */
export function supplementaryGids(a: Accounts, user: PasswdEntry): number[] {
  const gids = new Set<number>([user.gid]);
  for (const g of a.groups) if (g.members.includes(user.name)) gids.add(g.gid);
  return [...gids];
}

/** Both files' entries, and the reason either could not be read (ENOENT, EACCES, ...). */
export interface AccountsRead {
  accounts: Accounts;
  passwdError: string | null;
  groupError: string | null;
}

/** Reads and parses passwd and group; an unreadable file yields no entries and its error. */
export async function readAccounts(passwdFile: string, groupFile: string): Promise<AccountsRead> {
  const [p, g] = await Promise.all([readText(passwdFile), readText(groupFile)]);
  return {
    accounts: { users: p.text === null ? [] : parsePasswd(p.text), groups: g.text === null ? [] : parseGroup(g.text) },
    passwdError: p.error,
    groupError: g.error,
  };
}
