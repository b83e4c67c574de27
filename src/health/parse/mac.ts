/** Parsers for AppArmor and SELinux inputs: profile lists, denial lines, security contexts. */

/** `key=value` / `key="value"` pairs of an audit or kernel log record. */
export function auditFields(line: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([A-Za-z_][A-Za-z0-9_-]*)=("([^"]*)"|\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.set(m[1]!, m[3] ?? m[2]!);
  return out;
}

export interface AppArmorProfile {
  name: string;
  mode: string;
}

/** `/sys/kernel/security/apparmor/profiles` (also `aa-status --verbose`-like `name (mode)` lines). */
export function parseAppArmorProfiles(text: string): AppArmorProfile[] {
  const out: AppArmorProfile[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(.+?)\s+\((\w+)\)\s*$/.exec(line);
    if (m) out.push({ name: m[1]!, mode: m[2]! });
  }
  return out;
}

/** The profile that confines swtpm: `swtpm` (Debian/Ubuntu `usr.bin.swtpm`) or the path-named form. */
export function swtpmProfile(profiles: readonly AppArmorProfile[]): AppArmorProfile | null {
  return profiles.find((p) => p.name === 'swtpm' || p.name === '/usr/bin/swtpm') ?? null;
}

export interface AppArmorDenial {
  operation: string | null;
  profile: string | null;
  name: string | null;
  comm: string | null;
  requestedMask: string | null;
}

/** An `apparmor="DENIED"` record, or null for anything else. */
export function parseAppArmorDenial(line: string): AppArmorDenial | null {
  if (!/apparmor="?DENIED"?/.test(line)) return null;
  const f = auditFields(line);
  return {
    operation: f.get('operation') ?? null,
    profile: f.get('profile') ?? null,
    name: f.get('name') ?? null,
    comm: f.get('comm') ?? null,
    requestedMask: f.get('requested_mask') ?? null,
  };
}

/** Denials that concern swtpm: its own profile, or swtpm running under a per-VM libvirt profile. */
export function isSwtpmAppArmorDenial(d: AppArmorDenial): boolean {
  return d.comm === 'swtpm' || d.profile === 'swtpm' || d.profile === '/usr/bin/swtpm' || (d.name?.includes('/swtpm') ?? false);
}

export interface SelinuxAvc {
  permissions: string[];
  comm: string | null;
  path: string | null;
  name: string | null;
  scontext: string | null;
  tcontext: string | null;
  tclass: string | null;
  permissive: boolean | null;
}

/** `avc:  denied  { read } for pid=… comm="swtpm" … scontext=… tcontext=… tclass=… permissive=0`. */
export function parseSelinuxAvc(line: string): SelinuxAvc | null {
  const m = /avc:\s+denied\s+\{([^}]*)\}/.exec(line);
  if (!m) return null;
  const f = auditFields(line.slice(m.index + m[0].length));
  const permissive = f.get('permissive');
  return {
    permissions: m[1]!.trim().split(/\s+/).filter(Boolean),
    comm: f.get('comm') ?? null,
    path: f.get('path') ?? null,
    name: f.get('name') ?? null,
    scontext: f.get('scontext') ?? null,
    tcontext: f.get('tcontext') ?? null,
    tclass: f.get('tclass') ?? null,
    permissive: permissive === undefined ? null : permissive === '1',
  };
}

export function selinuxType(context: string | null): string | null {
  if (!context) return null;
  const parts = context.trim().split(':');
  return parts.length >= 3 ? parts[2]! : null;
}

export function isSwtpmAvc(a: SelinuxAvc): boolean {
  return a.comm === 'swtpm' || selinuxType(a.scontext) === 'swtpm_t' || selinuxType(a.tcontext) === 'swtpm_t' || selinuxType(a.tcontext) === 'swtpm_exec_t';
}

/** setroubleshoot's journal summary: "SELinux is preventing rpc-virtqemud from entrypoint access on the file /usr/bin/swtpm." */
export function isSwtpmSetroubleshoot(line: string): boolean {
  return /SELinux is preventing .* on the \S+ \S*swtpm/.test(line);
}

/** `/etc/selinux/config`: SELINUXTYPE (the policy store name, e.g. targeted). */
export function parseSelinuxConfigType(text: string): string | null {
  const m = /^\s*SELINUXTYPE\s*=\s*(\S+)\s*$/m.exec(text);
  return m ? m[1]! : null;
}

export interface Relabel {
  path: string;
  from: string;
  to: string;
}

/** `restorecon -n -v` dry run: `Would relabel /usr/bin/swtpm from system_u:object_r:bin_t:s0 to system_u:object_r:swtpm_exec_t:s0`. */
export function parseRestoreconDryRun(text: string): Relabel[] {
  const out: Relabel[] = [];
  for (const line of text.split('\n')) {
    const m = /^Would relabel (\S+) from (\S+) to (\S+)\s*$/.exec(line.trim());
    if (m) out.push({ path: m[1]!, from: m[2]!, to: m[3]! });
  }
  return out;
}

/** Paths (of `paths`) that no rule in the AppArmor profile text mentions, as a path or a parent glob. */
export function pathsNotInProfile(profileText: string, paths: readonly string[]): string[] {
  const rules = profileText
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean)
    .map((l) => /^(?:owner\s+)?(\/\S+)/.exec(l)?.[1])
    .filter((r): r is string => !!r);
  return paths.filter((p) => {
    const dir = p.replace(/\/+$/, '');
    return !rules.some((r) => {
      // `/var/lib/libvirt/swtpm/** rwk` covers the dir; `@{HOME}`-style variables are not expanded.
      const prefix = r.replace(/\{[^}]*\}|\*.*$/, '').replace(/\/+$/, '');
      return prefix.length > 1 && (dir === prefix || dir.startsWith(`${prefix}/`));
    });
  });
}
