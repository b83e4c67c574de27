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
  return computeVerdict({
    domcaps: primaryDomainCapabilities(libvirt.data),
    ...(libvirt.ok || !libvirt.error ? {} : { libvirtFailure: libvirt.error }),
    swtpm: swtpm.data ?? null,
    ...(swtpm.ok || !swtpm.error ? {} : { swtpmFailure: swtpm.error }),
    host: host.data ?? null,
    // null while the emulation check is off or has not run: it then neither helps nor hurts.
    emulation: emulationOutcomesFromResult(results.get(EMULATION)),
  });
}
