import { readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { writeFileAtomic } from '../util/atomic-file.js';

/**
 * Versioned JSON documents in the agent's state dir. A file that cannot be read as the expected
 * version is moved aside (`<name>.corrupt-<time>`) with a warning and treated as absent: the
 * agent loses that history but never crashes on it.
 */
export interface LoadResult<T> {
  value: T | null;
  /** Where a corrupt file was moved, if it was. */
  movedAside?: string;
}

export async function loadVersioned<T>(file: string, schema: z.ZodType<T>, log: Logger | undefined, opts: { moveAside: boolean } = { moveAside: true }): Promise<LoadResult<T>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { value: null };
    throw err;
  }
  let problem: string;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    if (parsed.success) return { value: parsed.data };
    problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).slice(0, 5).join('; ');
  } catch (err) {
    problem = `not JSON: ${(err as Error).message}`;
  }
  if (!opts.moveAside) {
    log?.warn({ file, problem, code: 'VTPM_ERR_STATE_CORRUPT' }, 'persisted state is corrupt; ignoring it');
    return { value: null };
  }
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await rename(file, aside);
  log?.warn({ file, movedTo: aside, problem, code: 'VTPM_ERR_STATE_CORRUPT' }, 'persisted state is corrupt; moved aside');
  return { value: null, movedAside: aside };
}

export async function saveVersioned(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 1) + '\n');
}

export function stateFile(stateDir: string, name: string): string {
  return path.join(stateDir, 'guests', name);
}

/** Removes temp files that a killed writer left behind (`.<name>.<pid>.<rand>.tmp`). */
export async function removeStaleTemps(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const stale = names.filter((n) => n.startsWith('.') && n.endsWith('.tmp'));
  await Promise.all(stale.map((n) => rm(path.join(dir, n), { force: true })));
  return stale.length;
}
