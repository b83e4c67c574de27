import { readFile, rename } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface Loaded<T> {
  value: T;
  /** Something an operator should know (unreadable or corrupt file); null when all was well. */
  problem: string | null;
  /**
   * False when the file exists but could not be read (EACCES, EIO…): the fresh value must not be
   * saved over it, or its counts and cursors would be lost for good.
   */
  canSave: boolean;
}

/** `2026-11-28T18-58-26Z`: a file-name-safe UTC time for the set-aside copy. */
function stamp(now: number): string {
  return new Date(now).toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/**
 * Small versioned JSON documents under the agent's state directory (log cursors, reset
 * baselines), written atomically (temp file, fsync, rename). A missing file starts afresh; a
 * corrupt or foreign one is moved aside to `<file>.corrupt-<time>` and replaced by a fresh
 * document; a file that exists but cannot be read is reported and left alone (canSave false).
 */
export async function loadJson<T>(file: string, schema: z.ZodType<T>, fresh: () => T, now = Date.now(), options: { readOnly?: boolean } = {}): Promise<Loaded<T>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { value: fresh(), problem: null, canSave: true };
    return { value: fresh(), problem: `cannot read ${file}: ${code ?? String(err)}; it is left as it is and not updated`, canSave: false };
  }
  let what: string;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (parsed.success) return { value: parsed.data, problem: null, canSave: true };
    what = 'did not match the expected format';
  } catch {
    what = 'is not JSON';
  }
  if (options.readOnly) return { value: fresh(), problem: `${file} ${what}; read as empty and left for the daemon to set aside`, canSave: false };
  const aside = `${file}.corrupt-${stamp(now)}`;
  try {
    await rename(file, aside);
  } catch (err) {
    // Could not set it aside: do not overwrite the only copy either.
    return { value: fresh(), problem: `${file} ${what} and cannot be moved aside (${(err as NodeJS.ErrnoException).code ?? String(err)}); it is left as it is and not updated`, canSave: false };
  }
  return { value: fresh(), problem: `${file} ${what}; started afresh (old copy: ${aside})`, canSave: true };
}

export async function saveJson(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value));
}
