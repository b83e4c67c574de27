import { openRegularFile } from './open-regular.js';

/**
 * The stateless sibling of FileTail: FileTail follows one file continuously (open handle, rotation
 * recovered from the rotated copy, exactly-once hand-over); readNewLines reads the increment of
 * many files on a schedule (every guest's swtpm log, the audit logs) with a byte budget per call,
 * keeping only a small cursor per file in the caller's store and no file open between calls.
 */

/** Where reading of one file stopped: its inode (rotation) and byte offset after the last whole line. */
export interface Cursor {
  ino: number;
  offset: number;
}

export interface ReadResult {
  lines: string[];
  cursor: Cursor;
  /** The file was replaced or truncated since the cursor; reading restarted at 0. */
  rotated: boolean;
  /** More complete lines remain beyond the byte budget. */
  more: boolean;
}

/**
 * Reads the complete lines appended to `file` since `cursor` (rotation- and truncation-safe:
 * a new inode or a file shorter than the offset restarts at 0). A partial last line stays for the
 * next call. Throws the fs error (ENOENT, EACCES), or NotRegularFileError (code ENOTREG) for a
 * FIFO or device at that path, for the caller to report.
 */
export async function readNewLines(file: string, cursor: Cursor | undefined, maxBytes: number): Promise<ReadResult> {
  const { handle, st } = await openRegularFile(file);
  try {
    let offset = cursor?.offset ?? 0;
    let rotated = false;
    if (cursor && (cursor.ino !== st.ino || st.size < cursor.offset)) {
      offset = 0;
      rotated = true;
    }
    if (st.size <= offset) return { lines: [], cursor: { ino: st.ino, offset }, rotated, more: false };
    const length = Math.min(st.size - offset, maxBytes);
    const buf = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const { bytesRead } = await handle.read(buf, read, length - read, offset + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    const chunk = buf.subarray(0, read);
    const lastNl = chunk.lastIndexOf(0x0a);
    if (lastNl < 0) {
      // One line longer than the whole budget: skip it rather than stall on it forever.
      const skip = read === maxBytes;
      return { lines: [], cursor: { ino: st.ino, offset: skip ? offset + read : offset }, rotated, more: skip };
    }
    const text = chunk.subarray(0, lastNl).toString('utf8');
    const consumed = lastNl + 1;
    return { lines: text.split('\n'), cursor: { ino: st.ino, offset: offset + consumed }, rotated, more: offset + consumed < st.size && read === maxBytes };
  } finally {
    await handle.close().catch(() => {});
  }
}
