import { readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { openRegularOrNull as openRegular } from './open-regular.js';

/**
 * Follows one log file by name, like `tail -F`, and hands complete lines to a sink with the
 * file offset they end at. Handles:
 * - rotation by rename (logrotate `create`, kubelet): the old file is drained to its end — the
 *   writer may still append to it until it reopens — before the new one is read from 0;
 * - rotation by copytruncate: the truncation is seen (size below the read position, or the first
 *   bytes changed) and the lines written since the last read are recovered from the copy;
 * - partial lines: only complete lines are handed over; the rest waits for its newline;
 * - restarts: the position saved (device, inode, committed offset, first bytes) is found again,
 *   also when the file was rotated while the agent was down.
 * Polling, not inotify: it works the same under a host-root bind mount and on every filesystem,
 * and at one poll per second costs nothing measurable.
 */

/** Where a file was read up to. `head` (hex) tells a reused inode or a truncated file from the original. */
export interface FilePosition {
  dev: number;
  ino: number;
  offset: number;
  head: string;
}

export interface TailPosition {
  current: FilePosition | null;
  /** A rotated-away file still being drained when the position was saved. */
  previous: FilePosition | null;
}

/**
 * Receives complete lines (each ending in `\n`) that end at file offset `endOffset`, and returns
 * the offset up to which they are fully processed (less than `endOffset` when a source holds an
 * unfinished record, e.g. CRI partial lines); undefined means all of them.
 */
export type LineSink = (lines: Buffer, endOffset: number, file: string) => number | undefined;

export type TailEvent =
  | { kind: 'opened'; file: string; offset: number }
  | { kind: 'rotated'; file: string; how: 'rename' | 'truncate' }
  | { kind: 'recovered'; file: string; from: string; bytes: number }
  | { kind: 'lost'; file: string; detail: string }
  | { kind: 'overlong'; file: string; bytes: number };

export interface FileTailOptions {
  file: string;
  sink: LineSink;
  /** Where to start when there is no saved position. */
  startAt: 'end' | 'beginning';
  position?: TailPosition | null;
  /** Older copies of this file (rotation); default: siblings named `<base>.*`, uncompressed. */
  rotatedCandidates?: (file: string) => Promise<string[]>;
  chunkBytes?: number;
  maxLineBytes?: number;
  onEvent?: (event: TailEvent) => void;
}

const HEAD_BYTES = 64;
const NEWLINE = 0x0a;

interface OpenFile {
  name: string;
  handle: FileHandle;
  dev: number;
  ino: number;
  head: Buffer;
  /** Next byte to read. */
  readPos: number;
  /** Bytes buf[0, carry) are an unfinished line starting at readPos - carry. */
  carry: number;
  /** Offset up to which lines were processed (what gets saved). */
  committed: number;
  /** Dropping the rest of an overlong line until its newline. */
  discarding: boolean;
  /** Polls in a row without growth, for retiring a rotated file. */
  idlePolls: number;
  /** The unfinished line between polls (the read buffer is shared and reused). */
  pending?: Buffer | undefined;
}

async function siblingsOf(file: string): Promise<string[]> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const candidates = names
    .filter((n) => n !== base && n.startsWith(`${base}.`) && !/\.(gz|xz|bz2|zst|lz4)$/.test(n))
    .map((n) => path.join(dir, n));
  const withTimes = await Promise.all(
    candidates.map(async (p) => {
      try {
        const st = await stat(p);
        // A FIFO, socket or device named like a rotated copy is never a copy (and opening a FIFO blocks).
        return st.isFile() ? { p, t: st.mtimeMs } : null;
      } catch {
        return null;
      }
    }),
  );
  return withTimes
    .filter((x): x is { p: string; t: number } => x !== null)
    .sort((a, b) => b.t - a.t)
    .slice(0, 8)
    .map((x) => x.p);
}

function samePrefix(a: Buffer, b: Buffer): boolean {
  const n = Math.min(a.length, b.length);
  return a.subarray(0, n).equals(b.subarray(0, n));
}

export class FileTail {
  readonly file: string;
  private readonly sink: LineSink;
  private readonly startAt: 'end' | 'beginning';
  private readonly candidates: (file: string) => Promise<string[]>;
  private readonly chunkBytes: number;
  private readonly maxLineBytes: number;
  private readonly onEvent: (event: TailEvent) => void;
  private readonly buf: Buffer;
  private saved: TailPosition | null;
  private current: OpenFile | null = null;
  private retiring: OpenFile | null = null;
  private started = false;
  private closed = false;
  private interrupted = false;

  constructor(options: FileTailOptions) {
    this.file = options.file;
    this.sink = options.sink;
    this.startAt = options.startAt;
    this.saved = options.position ?? null;
    this.candidates = options.rotatedCandidates ?? siblingsOf;
    this.chunkBytes = options.chunkBytes ?? 1024 * 1024;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
    this.onEvent = options.onEvent ?? (() => {});
    this.buf = Buffer.allocUnsafe(this.chunkBytes + this.maxLineBytes);
  }

  /** Whether the file is open and being followed (false while it does not exist). */
  get following(): boolean {
    return this.current !== null;
  }

  position(): TailPosition {
    const pos = (f: OpenFile | null): FilePosition | null =>
      f ? { dev: f.dev, ino: f.ino, offset: f.committed, head: f.head.toString('hex') } : null;
    if (!this.started) return this.saved ?? { current: null, previous: null };
    return { current: pos(this.current), previous: pos(this.retiring) };
  }

  /** Reads whatever is new; returns the number of bytes read. Never throws for a missing file. */
  async poll(): Promise<number> {
    if (this.closed) return 0;
    if (!this.started) {
      this.started = true;
      return this.resume();
    }
    let bytes = 0;
    if (this.retiring) bytes += await this.drainRetiring();
    const st = await statOrNull(this.file);
    if (this.current === null) {
      if (st === null) return bytes;
      // Appeared (or reappeared after a rename): everything in it is new.
      this.current = await this.openAt(this.file, 0, 'beginning');
      if (this.current === null) return bytes;
      return bytes + (await this.read(this.current));
    }
    const cur = this.current;
    if (st !== null && (st.dev !== cur.dev || st.ino !== cur.ino)) {
      bytes += await this.read(cur);
      this.onEvent({ kind: 'rotated', file: this.file, how: 'rename' });
      if (this.retiring) await this.finish(this.retiring);
      this.retiring = cur;
      cur.idlePolls = 0;
      this.current = await this.openAt(this.file, 0, 'beginning');
      if (this.current) bytes += await this.read(this.current);
      return bytes;
    }
    if (await this.wasTruncated(cur)) {
      this.onEvent({ kind: 'rotated', file: this.file, how: 'truncate' });
      bytes += await this.recoverFromCopy(cur, cur.readPos - cur.carry);
      cur.readPos = 0;
      cur.carry = 0;
      cur.committed = 0;
      cur.discarding = false;
      cur.head = Buffer.alloc(0);
    }
    return bytes + (await this.read(cur));
  }

  /** Makes a read in progress return after its current chunk (agent stopping). */
  interrupt(): void {
    this.interrupted = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.interrupted = true;
    for (const f of [this.current, this.retiring]) if (f) await f.handle.close().catch(() => {});
  }

  /** First poll: find the saved position again, or start per `startAt`. */
  private async resume(): Promise<number> {
    const saved = this.saved;
    this.saved = null;
    let bytes = 0;
    if (saved?.previous) {
      const prev = await this.locate(saved.previous, [this.file, ...(await this.candidates(this.file))]);
      if (prev) {
        bytes += await this.read(prev);
        await this.finish(prev);
      } else {
        this.onEvent({ kind: 'lost', file: this.file, detail: 'the rotated file being drained at the last save is gone' });
      }
    }
    const st = await statOrNull(this.file);
    if (saved?.current) {
      const s = saved.current;
      // The inode and the first bytes identify the file; the device number is not compared
      // because it can change across a host reboot (device enumeration) for the same file.
      if (st !== null && st.ino === s.ino) {
        const savedHead = Buffer.from(s.head, 'hex');
        const f = await this.openAt(this.file, s.offset, 'beginning');
        if (f) {
          if (st.size < s.offset || f.head.length < savedHead.length || !samePrefix(f.head, savedHead)) {
            // Truncated (or the inode was reused) while the agent was down.
            this.onEvent({ kind: 'rotated', file: this.file, how: 'truncate' });
            bytes += await this.recoverFromCopy({ ...f, head: savedHead }, s.offset);
            f.readPos = 0;
            f.committed = 0;
          }
          this.current = f;
          return bytes + (await this.read(f));
        }
      }
      // Rotated by rename while the agent was down: finish the old file first.
      const old = await this.locate(s, await this.candidates(this.file));
      if (old) {
        bytes += await this.read(old);
        await this.finish(old);
      } else {
        this.onEvent({ kind: 'lost', file: this.file, detail: 'the file followed before the restart was rotated away and is gone' });
      }
      if (st === null) return bytes;
      this.current = await this.openAt(this.file, 0, 'beginning');
      return this.current ? bytes + (await this.read(this.current)) : bytes;
    }
    if (st === null) return bytes;
    this.current = await this.openAt(this.file, 0, this.startAt);
    return this.current ? bytes + (await this.read(this.current)) : bytes;
  }

  private async locate(pos: FilePosition, names: string[]): Promise<OpenFile | null> {
    const head = Buffer.from(pos.head, 'hex');
    for (const name of names) {
      const st = await statOrNull(name);
      if (!st || st.ino !== pos.ino || st.size < pos.offset) continue;
      const f = await this.openAt(name, pos.offset, 'beginning');
      if (f && samePrefix(f.head, head)) return f;
      if (f) await f.handle.close().catch(() => {});
    }
    return null;
  }

  private async openAt(name: string, offset: number, startAt: 'end' | 'beginning'): Promise<OpenFile | null> {
    const opened = await openRegular(name);
    if (!opened) return null;
    const { handle, st } = opened;
    try {
      const head = await readHead(handle);
      let readPos = offset;
      let discarding = false;
      if (startAt === 'end') {
        readPos = st.size;
        // Starting in the middle of a line: skip to the next newline.
        if (st.size > 0) {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, st.size - 1);
          discarding = last[0] !== NEWLINE;
        }
      }
      const f: OpenFile = { name, handle, dev: st.dev, ino: st.ino, head, readPos, carry: 0, committed: readPos, discarding, idlePolls: 0 };
      this.onEvent({ kind: 'opened', file: name, offset: readPos });
      return f;
    } catch {
      await handle.close().catch(() => {});
      return null;
    }
  }

  /** copytruncate detection: the file shrank below what was read, or its first bytes changed. */
  private async wasTruncated(f: OpenFile): Promise<boolean> {
    let size: number;
    try {
      size = (await f.handle.stat()).size;
    } catch {
      return false;
    }
    if (size < f.readPos) return true;
    if (f.readPos === 0) return false;
    const head = await readHead(f.handle);
    if (!samePrefix(head, f.head)) return true;
    if (head.length > f.head.length) f.head = head;
    return false;
  }

  /**
   * After a copytruncate, the copy holds what was written between the last read and the
   * truncation: read it from the old position. Without a copy those lines are gone (reported).
   */
  private async recoverFromCopy(f: OpenFile, from: number): Promise<number> {
    for (const name of await this.candidates(this.file)) {
      const opened = await openRegular(name);
      if (!opened) continue;
      const { handle, st } = opened;
      let keep = false;
      try {
        const head = await readHead(handle);
        if (st.size >= from && f.head.length > 0 && samePrefix(head, f.head)) {
          const copy: OpenFile = { name, handle, dev: st.dev, ino: st.ino, head, readPos: from, carry: 0, committed: from, discarding: f.discarding, idlePolls: 0 };
          keep = true;
          const bytes = await this.read(copy);
          await this.finish(copy);
          this.onEvent({ kind: 'recovered', file: this.file, from: name, bytes });
          return bytes;
        }
      } finally {
        if (!keep) await handle.close().catch(() => {});
      }
    }
    if (from > 0) this.onEvent({ kind: 'lost', file: this.file, detail: 'truncated, and no copy holding the unread lines was found' });
    return 0;
  }

  private async drainRetiring(): Promise<number> {
    const f = this.retiring!;
    const bytes = await this.read(f);
    f.idlePolls = bytes === 0 ? f.idlePolls + 1 : 0;
    // Two quiet polls after the writer moved on: it has reopened the new file.
    if (f.idlePolls >= 2) {
      await this.finish(f);
      this.retiring = null;
    }
    return bytes;
  }

  /** The file will not grow any more: hand over a last unterminated line, then close. */
  private async finish(f: OpenFile): Promise<void> {
    if (f.pending && f.pending.length > 0 && !f.discarding) {
      const line = Buffer.concat([f.pending, Buffer.from([NEWLINE])]);
      f.committed = this.sink(line, f.readPos, f.name) ?? f.readPos;
    }
    f.carry = 0;
    f.pending = undefined;
    await f.handle.close().catch(() => {});
  }

  /** Reads to the current end of the file, handing complete lines to the sink. */
  private async read(f: OpenFile): Promise<number> {
    const buf = this.buf;
    let total = 0;
    // The carried partial line lives in f.pending between polls (the shared buffer is reused).
    let carry = 0;
    if (f.pending && f.pending.length) {
      f.pending.copy(buf, 0);
      carry = f.pending.length;
    }
    for (;;) {
      // Between chunks, everything read so far is committed: stopping here loses nothing.
      if (this.interrupted) break;
      let n: number;
      try {
        ({ bytesRead: n } = await f.handle.read(buf, carry, this.chunkBytes, f.readPos));
      } catch {
        break;
      }
      if (n === 0) break;
      f.readPos += n;
      total += n;
      let start = 0;
      const end = carry + n;
      if (f.discarding) {
        const nl = buf.indexOf(NEWLINE, carry);
        if (nl === -1 || nl >= end) {
          carry = 0;
          f.committed = f.readPos;
          continue;
        }
        f.discarding = false;
        start = nl + 1;
        f.committed = f.readPos - (end - start);
      }
      const lastNl = buf.lastIndexOf(NEWLINE, end - 1);
      if (lastNl >= start) {
        const lines = buf.subarray(start, lastNl + 1);
        const endOffset = f.readPos - (end - (lastNl + 1));
        f.committed = this.sink(lines, endOffset, f.name) ?? endOffset;
        start = lastNl + 1;
      }
      const rest = end - start;
      if (rest >= this.maxLineBytes) {
        // A line longer than anything nova-compute writes (binary garbage): keep its beginning
        // for the classifier, drop the rest up to its newline.
        this.onEvent({ kind: 'overlong', file: f.name, bytes: rest });
        const line = Buffer.concat([buf.subarray(start, start + this.maxLineBytes), Buffer.from([NEWLINE])]);
        this.sink(line, f.readPos, f.name);
        f.committed = f.readPos;
        f.discarding = true;
        carry = 0;
        continue;
      }
      if (rest > 0 && start > 0) buf.copy(buf, 0, start, end);
      carry = rest;
    }
    f.carry = carry;
    f.pending = carry ? Buffer.from(buf.subarray(0, carry)) : undefined;
    return total;
  }
}

async function readHead(handle: FileHandle): Promise<Buffer> {
  const head = Buffer.alloc(HEAD_BYTES);
  const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
  return head.subarray(0, bytesRead);
}

async function statOrNull(file: string): Promise<{ dev: number; ino: number; size: number } | null> {
  try {
    const st = await stat(file);
    return st.isFile() ? { dev: st.dev, ino: st.ino, size: st.size } : null;
  } catch {
    return null;
  }
}
