import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** The path names something that is not a regular file (a FIFO, socket, device or directory). */
export class NotRegularFileError extends Error {
  readonly code = 'ENOTREG';
  constructor(readonly path: string) {
    super(`${path}: not a regular file`);
    this.name = 'NotRegularFileError';
  }
}

/**
 * Opens `name` for reading only if it is a regular file. O_NONBLOCK keeps the open of a FIFO (or
 * a device) from blocking until a writer appears; on a regular file it changes nothing. The type
 * is checked on the handle, so a name swapped between a stat and the open is caught too.
 * Throws the fs error (ENOENT, EACCES) or NotRegularFileError.
 */
export async function openRegularFile(name: string): Promise<{ handle: FileHandle; st: Stats }> {
  const handle = await open(name, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (st.isFile()) return { handle, st };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  await handle.close().catch(() => {});
  throw new NotRegularFileError(name);
}

/** openRegularFile, with every failure as null (for followers that retry on their next poll). */
export async function openRegularOrNull(name: string): Promise<{ handle: FileHandle; st: Stats } | null> {
  try {
    return await openRegularFile(name);
  } catch {
    return null;
  }
}
