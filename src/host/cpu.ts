import { readFile } from 'node:fs/promises';

/**
 * Whether the CPU offers hardware virtualization (Intel VT-x `vmx`, AMD-V `svm`), from the flags in
 * /proc/cpuinfo (kernel-wide, the same inside a pod). null when the file cannot be read or lists no
 * flags (non-x86 kernels name them differently). Read directly: systeminformation's cpu() would run
 * lscpu twice and dmidecode for this one bit.
 */
export function parseHardwareVirtualization(cpuinfo: string): boolean | null {
  const flags = /^(?:flags|features)\s*:(.*)$/im.exec(cpuinfo)?.[1];
  if (flags === undefined) return null;
  return /\b(?:vmx|svm)\b/.test(flags);
}

export async function hardwareVirtualization(file = '/proc/cpuinfo'): Promise<boolean | null> {
  try {
    return parseHardwareVirtualization(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
}
