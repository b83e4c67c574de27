/**
 * The capability verdict assembled from the latest probe results. Consumers (reporter,
 * Placement reconciler, CLI) call this; it does no I/O.
 */
import { emulationOutcomesFromResult } from './libvirt/emulation-outcomes.js';
import { HOST, LIBVIRT, primaryDomainCapabilities, SWTPM } from './libvirt/facts.js';
import type { ProbeResults } from './results.js';
import { EMULATION } from './swtpm/types.js';
import { computeVerdict, type Verdict } from './verdict.js';

/** null until the libvirt, swtpm and host probes have each run once. */
export function verdictFromResults(results: ProbeResults): Verdict | null {
  const libvirt = results.get(LIBVIRT);
  const swtpm = results.get(SWTPM);
  const host = results.get(HOST);
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
    emulation: emulationOutcomesFromResult(results.get(EMULATION)),
  });
}
