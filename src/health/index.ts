/**
 * The host health checks (docs/failure-modes §2, C1–C14). Each file in checks/ declares its
 * checks, its probe (with its key) and the facts it exports; reasons.ts holds the reason codes and
 * remedies, metrics.ts the metrics, config.ts the toggles. This list is the one registry: the
 * agent, the tests and the metrics read the health probes from here.
 */
import type { Probe } from '../probes/types.js';
import { healthBinariesProbe } from './checks/binaries.js';
import { healthContainerProbe } from './checks/container.js';
import { healthCryptoProbe } from './checks/crypto.js';
import { healthGuestStateProbe } from './checks/guest-state.js';
import { healthLocalCaProbe } from './checks/localca.js';
import { healthLogsProbe } from './checks/logs.js';
import { healthMacProbe } from './checks/mac.js';
import { healthNovaProbe } from './checks/nova.js';
import { healthOrphansProbe } from './checks/orphans.js';
import { healthPrincipalProbe } from './checks/principal.js';
import { healthVersionsProbe } from './checks/versions.js';
import { registerHealthMetrics } from './metrics.js';

const probes = [
  healthBinariesProbe,
  healthPrincipalProbe,
  healthLocalCaProbe,
  healthGuestStateProbe,
  healthOrphansProbe,
  healthMacProbe,
  healthCryptoProbe,
  healthLogsProbe,
  healthNovaProbe,
  healthVersionsProbe,
  healthContainerProbe,
] as const;

const keys = probes.map((p) => p.name);

/** Every health probe, each registering the shared health metrics (once per registry) over all of them. */
export const healthProbes: Probe[] = probes.map(
  (p): Probe => ({ ...p, registerMetrics: (registry, results) => registerHealthMetrics(registry, results, keys) }),
);
