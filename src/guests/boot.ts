import { readFile } from 'node:fs/promises';
import { AgentError } from '../errors.js';

/** The kernel's boot id: a new one at every boot. Tests point the path at a file of their own. */
export async function readBootId(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AgentError('VTPM_ERR_STATE_CORRUPT', `boot id cannot be read from ${path}: ${(err as Error).message}`, { cause: err });
  }
  const id = text.trim();
  if (!/^[0-9a-zA-Z-]{8,64}$/.test(id)) throw new AgentError('VTPM_ERR_PARSE', `boot id in ${path} is not an id: ${JSON.stringify(id.slice(0, 80))}`);
  return id;
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
