/**
 * The host's process list: the one reader of the host /proc process table. A round fact (PROCESSES):
 * the probes of a round share one scan; where libvirtd runs is read from it (libvirtd-location.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { hostFact } from './facts.js';
import type { HostPathResolver } from '../util/hostpath.js';

export interface ProcInfo {
  pid: number;
  argv: string[];
  comm: string;
}

/** One process's command line and name, or null when it exited meanwhile or is not ours to read. */
export async function readProcess(hostPath: HostPathResolver, pid: number): Promise<ProcInfo | null> {
  try {
    const [cmdline, comm] = await Promise.all([readFile(hostPath(`/proc/${pid}/cmdline`), 'utf8'), readFile(hostPath(`/proc/${pid}/comm`), 'utf8')]);
    return { pid, argv: cmdline.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1), comm: comm.trim() };
  } catch {
    return null;
  }
}

/** Every process on the host (as visible through the host /proc); empty when /proc cannot be listed. */
export async function listProcesses(hostPath: HostPathResolver): Promise<ProcInfo[]> {
  let entries: string[];
  try {
    entries = await readdir(hostPath('/proc'));
  } catch {
    return [];
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  const out = await Promise.all(pids.map((pid) => readProcess(hostPath, pid)));
  return out.filter((p): p is ProcInfo => p !== null);
}

/** The round's process list. */
export const PROCESSES = hostFact<ProcInfo[]>('processes', (facts) => listProcesses(facts.hostPath));
