/**
 * Finds processes by their command line in /proc. Used to remove swtpm instances orphaned by an
 * agent that was SIGKILLed (no handler ran), and by tests to prove nothing is left behind.
 */
import { readdir, readFile } from 'node:fs/promises';

export interface ProcessEntry {
  pid: number;
  argv: string[];
}

/** argv from /proc/<pid>/cmdline bytes (NUL-separated, trailing NUL optional). */
export function parseCmdline(bytes: Uint8Array): string[] {
  const text = Buffer.from(bytes).toString('utf8');
  const parts = text.split('\0');
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Processes any of whose arguments contains `needle`. Races with exiting processes are ignored. */
export async function processesMentioning(needle: string, procRoot = '/proc'): Promise<ProcessEntry[]> {
  const out: ProcessEntry[] = [];
  let names: string[];
  try {
    names = await readdir(procRoot);
  } catch {
    return out;
  }
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        const pid = Number(n);
        if (pid === process.pid) return;
        try {
          const argv = parseCmdline(await readFile(`${procRoot}/${n}/cmdline`));
          if (argv.some((a) => a.includes(needle))) out.push({ pid, argv });
        } catch {
          // exited meanwhile, or not ours to read
        }
      }),
  );
  return out.sort((a, b) => a.pid - b.pid);
}
