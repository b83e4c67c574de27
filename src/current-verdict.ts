/**
 * The capability verdict assembled from the latest probe results. Consumers (reporter,
 * Placement reconciler, CLI) call this; it does no I/O.
 */
import { primaryDomainCapabilities, type LibvirtFacts } from './probes/libvirt.js';
import type { ProbeResults } from './probes/types.js';
import { emulationOutcomesFromResult, type EmulationData } from './swtpm/index.js';
import { computeVerdict, type HostFacts, type SwtpmFacts, type Verdict } from './verdict.js';

/** null until the libvirt, swtpm and host probes have each run once. */
export function verdictFromResults(results: ProbeResults): Verdict | null {
  const libvirt = results.get<LibvirtFacts>('libvirt');
  const swtpm = results.get<SwtpmFacts>('swtpm');
  const host = results.get<HostFacts>('host');
  if (!libvirt || !swtpm || !host) return null;
  const domcaps = primaryDomainCapabilities(libvirt.data);
  const domcapsError = libvirt.ok
    ? libvirt.data?.machines.map((m) => m.error).filter(Boolean).join('; ') || undefined
    : libvirt.error?.message;
  return computeVerdict({
    domcaps,
    domcapsError,
    swtpm: swtpm.data ?? null,
    host: host.data ?? null,
    // null while the emulation check is off or has not run: it then neither helps nor hurts.
    emulation: emulationOutcomesFromResult(results.get<EmulationData>('emulation')),
  });
}
