/**
 * The boot: the kernel's boot id (a new one at every boot) and its boot time. The one home of both
 * facts: the restart watcher compares boots by them, the journald follower resumes by the boot id.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AgentError } from '../errors.js';

/** Where the kernel publishes the boot id (kernel-wide: the same inside a pod). */
export const KERNEL_BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

function parseBootId(text: string, path: string): string {
  const id = text.trim();
  if (!/^[0-9a-zA-Z-]{8,64}$/.test(id)) throw new AgentError('VTPM_ERR_PARSE', `boot id in ${path} is not an id: ${JSON.stringify(id.slice(0, 80))}`);
  return id;
}

/** The boot id from `path` (tests point it at a file of their own); throws a coded error. */
export async function readBootId(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentError('VTPM_ERR_STATE_CORRUPT', `boot id cannot be read from ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseBootId(text, path);
}

/** The running kernel's boot id, or null when it cannot be read or is not an id. */
export function kernelBootId(path = KERNEL_BOOT_ID_PATH): string | null {
  try {
    return parseBootId(readFileSync(path, 'utf8'), path);
  } catch {
    return null;
  }
}

/** Boot time in Unix seconds from /proc/stat's `btime`; null when it cannot be read. */
export async function readBootTime(procStatPath: string): Promise<number | null> {
  try {
    const m = /^btime\s+(\d+)$/m.exec(await readFile(procStatPath, 'utf8'));
    return m ? Number.parseInt(m[1]!, 10) : null;
  } catch {
    return null;
  }
}
