import { readFile } from 'node:fs/promises';
import { AgentError } from '../errors.js';
// One atomic-write implementation for the agent's state files (it lives with the guest watcher).
import { writeFileAtomic } from '../util/atomic-file.js';

/**
 * The follower's state as a JSON document written atomically (temp file, fsync, rename, fsync of
 * the directory): a crash leaves the old or the new version, never a torn one. Reading tells
 * "absent" from "corrupt": a corrupt file is a typed error the caller reports, then starts over.
 */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value)}\n`);
}

/** undefined when the file does not exist; throws VTPM_ERR_STATE_CORRUPT when it is not JSON. */
export async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AgentError('VTPM_ERR_STATE_CORRUPT', `cannot read state file ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AgentError('VTPM_ERR_STATE_CORRUPT', `state file ${file} is not valid JSON`, { cause: err, details: { file } });
  }
}
