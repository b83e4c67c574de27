/** Parses `virsh version`: "Using library: libvirt 9.0.0" and "Running hypervisor: QEMU 7.2.22". */
export interface LibvirtVersions {
  libvirt: string | null;
  hypervisor: string | null;
  hypervisorVersion: string | null;
}

export function parseVirshVersion(output: string): LibvirtVersions {
  const library = /Using library:\s*libvirt\s+(\d+(?:\.\d+)*)/.exec(output);
  const hv = /Running hypervisor:\s*(\S+)\s+(\d+(?:\.\d+)*)/.exec(output);
  return { libvirt: library?.[1] ?? null, hypervisor: hv?.[1] ?? null, hypervisorVersion: hv?.[2] ?? null };
}
