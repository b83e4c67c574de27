import si from 'systeminformation';

export interface HostMemory {
  totalBytes: number;
  /** What the kernel estimates new workloads (guests, swtpm) can still get without swapping. */
  availableBytes: number;
}

/**
 * The host's memory, from systeminformation's mem(): on Linux one read of /proc/meminfo (kernel-wide,
 * the same inside a pod), no child process. null when it cannot be read.
 */
export async function hostMemory(): Promise<HostMemory | null> {
  try {
    const m = await si.mem();
    return m.total > 0 ? { totalBytes: m.total, availableBytes: m.available } : null;
  } catch {
    return null;
  }
}
