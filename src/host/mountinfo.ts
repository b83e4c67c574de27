/**
 * /proc/<pid>/mountinfo: the one parser of the mount table (where libvirtd runs, and which of the
 * libvirt container's directories are host mounts).
 */

export interface MountEntry {
  mountPoint: string;
  /** Path inside the source filesystem that is mounted (bind mounts show the host sub-path). */
  root: string;
  fsType: string;
  source: string;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** /proc/<pid>/mountinfo: `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right.length < 2) continue;
    out.push({ root: unescapeMount(left[3]!), mountPoint: unescapeMount(left[4]!), fsType: right[0]!, source: unescapeMount(right[1]!) });
  }
  return out;
}

/** The mount that covers `p` (longest mount-point prefix). */
export function mountFor(mounts: readonly MountEntry[], p: string): MountEntry | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const covers = mp === '/' || p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (covers && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}
