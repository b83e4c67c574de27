import { readFile, readlink } from 'node:fs/promises';
import type { ProcInfo } from '../host/processes.js';
import { isSwtpmCommand, parseSwtpmArgs, type SwtpmArgs } from './parse/proc.js';
import type { HostPathResolver } from '../util/hostpath.js';

export interface SwtpmProcess extends ProcInfo {
  args: SwtpmArgs;
}

export function swtpmProcesses(procs: readonly ProcInfo[]): SwtpmProcess[] {
  return procs.filter((p) => isSwtpmCommand(p.argv)).map((p) => ({ ...p, args: parseSwtpmArgs(p.argv) }));
}


export async function readProcText(hostPath: HostPathResolver, pid: number, file: string): Promise<string | null> {
  try {
    return await readFile(hostPath(`/proc/${pid}/${file}`), 'utf8');
  } catch {
    return null;
  }
}

/** The mount namespace of a process (`mnt:[4026531840]`), or null. */
export async function mountNamespace(hostPath: HostPathResolver, pid: number | 'self'): Promise<string | null> {
  try {
    return await readlink(hostPath(`/proc/${pid}/ns/mnt`));
  } catch {
    return null;
  }
}
