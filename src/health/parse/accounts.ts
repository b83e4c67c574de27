/** passwd and group files, read from the host root (not NSS), so the agent sees the host's accounts from a pod. */
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

function id(text: string | undefined): number | null {
  if (text === undefined || !/^\d+$/.test(text)) return null;
  return Number.parseInt(text, 10);
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
