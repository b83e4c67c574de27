import { readdir, readFile, readlink } from 'node:fs/promises';
import { isSwtpmCommand, parseSwtpmArgs, type SwtpmArgs } from './parse/proc.js';
import type { HostPathResolver } from '../util/hostpath.js';

export interface ProcInfo {
  pid: number;
  argv: string[];
  comm: string;
}

async function readProc(hostPath: HostPathResolver, pid: number): Promise<ProcInfo | null> {
  try {
    const [cmdline, comm] = await Promise.all([readFile(hostPath(`/proc/${pid}/cmdline`), 'utf8'), readFile(hostPath(`/proc/${pid}/comm`), 'utf8')]);
    return { pid, argv: cmdline.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1), comm: comm.trim() };
  } catch {
    return null; // exited meanwhile, or not ours to read
  }
}

/** Every process on the host (as visible through the host /proc). */
export async function listProcesses(hostPath: HostPathResolver): Promise<ProcInfo[]> {
  let entries: string[];
  try {
    entries = await readdir(hostPath('/proc'));
  } catch {
    return [];
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  const out = await Promise.all(pids.map((pid) => readProc(hostPath, pid)));
  return out.filter((p): p is ProcInfo => p !== null);
}

export interface SwtpmProcess extends ProcInfo {
  args: SwtpmArgs;
}

export function swtpmProcesses(procs: readonly ProcInfo[]): SwtpmProcess[] {
  return procs.filter((p) => isSwtpmCommand(p.argv)).map((p) => ({ ...p, args: parseSwtpmArgs(p.argv) }));
}

/** The libvirt daemon that runs QEMU guests: virtqemud (modular) or libvirtd (monolithic). */
export function findLibvirtDaemon(procs: readonly ProcInfo[]): ProcInfo | null {
  return procs.find((p) => p.comm === 'virtqemud') ?? procs.find((p) => p.comm === 'libvirtd') ?? null;
}

export async function readProcText(hostPath: HostPathResolver, pid: number, file: string): Promise<string | null> {
  try {
    return await readFile(hostPath(`/proc/${pid}/${file}`), 'utf8');
  } catch {
    return null;
  }
}

export async function procAlive(hostPath: HostPathResolver, pid: number): Promise<ProcInfo | null> {
  return readProc(hostPath, pid);
}

/** The mount namespace of a process (`mnt:[4026531840]`), or null. */
export async function mountNamespace(hostPath: HostPathResolver, pid: number | 'self'): Promise<string | null> {
  try {
    return await readlink(hostPath(`/proc/${pid}/ns/mnt`));
  } catch {
    return null;
  }
}
