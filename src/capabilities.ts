/**
 * The capability verdict assembled from the latest probe results. Consumers (reporter,
 * Placement reconciler, CLI) call this; it does no I/O.
 */
import { primaryDomainCapabilities, type LibvirtFacts } from './probes/libvirt.js';
import type { ProbeResults } from './probes/types.js';
import { computeVerdict, type EmulationOutcome, type HostFacts, type SwtpmFacts, type Verdict } from './verdict.js';

/** Maps the emulation probe's data to outcomes; set by the emulation module when it is wired. */
export type EmulationReader = (results: ProbeResults) => EmulationOutcome[] | null;

let emulationReader: EmulationReader = () => null;

export function setEmulationReader(reader: EmulationReader): void {
  emulationReader = reader;
}

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
    emulation: emulationReader(results),
  });
}
