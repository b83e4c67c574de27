import { readdir, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';

/**
 * The CRI log format containerd writes for a container's stdout/stderr:
 *   `2026-11-28T16:00:00.123456789Z stdout F <message>`
 * `F` ends a line; `P` is a piece of a longer line (containerd splits at 16 KiB) to be joined
 * with the following records up to the next `F`. Files live in
 * `/var/log/pods/<ns>_<pod>_<uid>/<container>/<restart>.log`, linked from
 * `/var/log/containers/<pod>_<ns>_<container>-<container id>.log`.
 */

export interface CriRecord {
  /** Message bytes without the newline (a view into the chunk for F records). */
  message: Buffer;
  /** The record's RFC 3339 timestamp as bytes; parse with {@link criTime} only when needed. */
  time: Buffer | null;
}

/** Unix ms of a record's timestamp (parsed lazily: most records are never looked at). */
export function criTime(record: CriRecord): number | null {
  if (!record.time) return null;
  const ms = Date.parse(record.time.toString('latin1'));
  return Number.isFinite(ms) ? ms : null;
}

const SPACE = 0x20;
const COLON = 0x3a;
const F = 0x46;
const P = 0x50;
const NEWLINE = 0x0a;

/**
 * Joins partial records of one file. `consume` walks a chunk of complete lines and returns the
 * offset up to which everything is done: the start of a pending P sequence, so a restart re-reads
 * that sequence from the file instead of losing or duplicating it.
 */
export class CriJoiner {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private pendingStart = -1;

  constructor(private readonly maxLineBytes = 64 * 1024) {}

  get hasPending(): boolean {
    return this.pendingStart >= 0;
  }

  /** Forget a pending sequence (the file ended in the middle of it and is finished). */
  flush(emit: (record: CriRecord) => void): void {
    if (this.pendingStart < 0) return;
    emit({ message: Buffer.concat(this.parts), time: null });
    this.reset();
  }

  /**
   * `wants(buf, start, end)` may reject a complete single-record message before anything is
   * allocated for it (the follower's level sniff); joined and damaged records are always emitted.
   */
  consume(lines: Buffer, endOffset: number, emit: (record: CriRecord) => void, wants?: (buf: Buffer, start: number, end: number) => boolean): number {
    const base = endOffset - lines.length;
    let start = 0;
    while (start < lines.length) {
      let end = lines.indexOf(NEWLINE, start);
      if (end === -1) end = lines.length;
      this.record(lines, start, end, base + start, emit, wants);
      start = end + 1;
    }
    return this.pendingStart >= 0 ? this.pendingStart : endOffset;
  }

  private record(buf: Buffer, start: number, end: number, fileOffset: number, emit: (record: CriRecord) => void, wants?: (buf: Buffer, start: number, end: number) => boolean): void {
    // Byte comparisons only: this runs for every line of the container log.
    const s1 = buf.indexOf(SPACE, start);
    const s2 = s1 === -1 || s1 >= end ? -1 : buf.indexOf(SPACE, s1 + 1);
    const s3 = s2 === -1 || s2 >= end ? -1 : buf.indexOf(SPACE, s2 + 1);
    let partial = false;
    let valid = s3 !== -1 && s3 <= end;
    if (valid) {
      const tagLen = s3 - s2 - 1;
      const first = buf[s2 + 1];
      if (tagLen === 1 && (first === F || first === P)) partial = first === P;
      // Tags may become a ':'-separated list in later CRI versions; P is the one that matters.
      else if (tagLen > 1 && buf.indexOf(COLON, s2 + 1) !== -1 && buf.indexOf(COLON, s2 + 1) < s3) partial = buf.toString('latin1', s2 + 1, s3).split(':').includes('P');
      else valid = false;
    }
    if (!valid) {
      // Not a CRI record (a damaged line): pass it through whole, so nothing is silently lost.
      this.flush(emit);
      emit({ message: buf.subarray(start, end), time: null });
      return;
    }
    if (!partial && this.pendingStart < 0 && wants && !wants(buf, s3 + 1, end)) return;
    const message = buf.subarray(s3 + 1, end);
    if (partial) {
      if (this.pendingStart < 0) this.pendingStart = fileOffset;
      if (this.partsBytes < this.maxLineBytes) {
        const copy = Buffer.from(message.subarray(0, this.maxLineBytes - this.partsBytes));
        this.parts.push(copy);
        this.partsBytes += copy.length;
      }
      return;
    }
    const time = buf.subarray(start, s1);
    if (this.pendingStart >= 0) {
      this.parts.push(message);
      const joined = Buffer.concat(this.parts);
      this.reset();
      emit({ message: joined, time: Buffer.from(time) });
      return;
    }
    emit({ message, time });
  }

  private reset(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.pendingStart = -1;
  }
}

/** `*` wildcards only (what a glob of log names needs), anchored. */
export function wildcardToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '[^/]*');
  return new RegExp(`^${escaped}$`);
}

export interface CriContainerLog {
  /** The link in /var/log/containers (host path). */
  link: string;
  /** The file it points to (host path, e.g. /var/log/pods/…/nova-compute/0.log). */
  target: string;
  /** Directory of the container's logs and the restart number, for ordering. */
  containerDir: string;
  restart: number;
}

/**
 * Lists the container logs matching `glob` (a host path with `*` in the file name), keeping only
 * the named container (the `<container>-<id>.log` part), resolved to their files under
 * /var/log/pods. Links are absolute host paths, so they are resolved through `hostPath`.
 */
export async function discoverCriLogs(glob: string, container: string, hostPath: (p: string) => string): Promise<CriContainerLog[]> {
  const dir = path.dirname(glob);
  const nameRe = wildcardToRegExp(path.basename(glob));
  const containerRe = new RegExp(`_${container.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{12,64}\\.log$`);
  let names: string[];
  try {
    names = await readdir(hostPath(dir));
  } catch {
    return [];
  }
  const found: CriContainerLog[] = [];
  for (const name of names) {
    if (!nameRe.test(name) || !containerRe.test(name)) continue;
    const link = path.join(dir, name);
    let target: string;
    try {
      const raw = await readlink(hostPath(link));
      target = path.isAbsolute(raw) ? raw : path.resolve(dir, raw);
    } catch (err) {
      // A regular file instead of a link (some runtimes): follow it as it is.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') continue;
      target = link;
    }
    // One more hop when the pod directory is itself a link (rare, but cheap to allow).
    try {
      const real = await realpath(hostPath(target));
      const root = hostPath('/');
      if (root !== '/' && real.startsWith(root)) target = `/${path.relative(root, real)}`;
      else if (root === '/') target = real;
    } catch {
      continue;
    }
    const restart = Number(/(\d+)\.log$/.exec(target)?.[1] ?? '0');
    found.push({ link, target, containerDir: path.dirname(target), restart });
  }
  return found.sort((a, b) => (a.containerDir === b.containerDir ? a.restart - b.restart : a.containerDir < b.containerDir ? -1 : 1));
}
