import { lstat, open, stat } from 'node:fs/promises';
import path from 'node:path';

/** What the checks need to know about a path, with the failure as data instead of an exception. */
export type PathInfo =
  | { exists: true; path: string; uid: number; gid: number; mode: number; size: number; isDir: boolean; isFile: boolean; isSocket: boolean; ino: number; dev: number; mtimeMs: number }
  | { exists: false; path: string; error: string };

export async function pathInfo(p: string, opts: { follow?: boolean } = {}): Promise<PathInfo> {
  try {
    const s = await (opts.follow === false ? lstat(p) : stat(p));
    return {
      exists: true,
      path: p,
      uid: s.uid,
      gid: s.gid,
      mode: s.mode & 0o7777,
      size: s.size,
      isDir: s.isDirectory(),
      isFile: s.isFile(),
      isSocket: s.isSocket(),
      ino: s.ino,
      dev: s.dev,
      mtimeMs: s.mtimeMs,
    };
  } catch (err) {
    return { exists: false, path: p, error: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

/** Reads a text file; `null` text with the errno code when it cannot be read (missing, EACCES, a directory). */
export async function readText(p: string, maxBytes = 4 * 1024 * 1024): Promise<{ text: string; error: null } | { text: null; error: string }> {
  try {
    // Read at most maxBytes (a huge file must not be buffered whole); /proc and /sys files report
    // size 0, so read in chunks until EOF or the cap rather than trusting stat.
    const fh = await open(p, 'r');
    try {
      const chunks: Buffer[] = [];
      let total = 0;
      while (total < maxBytes) {
        const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes - total));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        total += bytesRead;
      }
      return { text: Buffer.concat(chunks).toString('utf8'), error: null };
    } finally {
      await fh.close();
    }
  } catch (err) {
    return { text: null, error: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

/** `/a/b/c` → [`/`, `/a`, `/a/b`] (the directories that must be searchable to reach it). */
export function parentsOf(p: string): string[] {
  const out: string[] = [];
  let dir = path.dirname(path.resolve(p));
  for (;;) {
    out.unshift(dir);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return out;
}

export function octal(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}
