/**
 * POSIX DAC evaluation for another principal (the swtpm user), from owner, group and mode — the
 * agent runs as root and must not ask the kernel "can *I*" but "could *tss*". ACLs and MAC are
 * not modelled (C7/C8 cover MAC).
 */
export interface Who {
  uid: number;
  /** Primary and supplementary groups. */
  gids: readonly number[];
}

export interface Owned {
  uid: number;
  gid: number;
  mode: number;
  isDir: boolean;
}

export type Want = 'r' | 'w' | 'x';

export function canAccess(file: Owned, who: Who, want: readonly Want[]): boolean {
  if (who.uid === 0) {
    // root bypasses DAC, except that execute on a file needs some x bit.
    return !(want.includes('x') && !file.isDir && (file.mode & 0o111) === 0);
  }
  let shift: number;
  if (file.uid === who.uid) shift = 6;
  else if (who.gids.includes(file.gid)) shift = 3;
  else shift = 0;
  const bits = (file.mode >> shift) & 7;
  return want.every((w) => (w === 'r' ? bits & 4 : w === 'w' ? bits & 2 : bits & 1) !== 0);
}
