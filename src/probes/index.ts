import { emulationProbe } from './emulation.js';
import { guestInventoryProbe } from './guest-inventory.js';
import { healthBinariesProbe } from './health-binaries.js';
import { healthPrincipalProbe } from './health-principal.js';
import { healthLocalCaProbe } from './health-localca.js';
import { healthGuestStateProbe } from './health-guest-state.js';
import { healthOrphansProbe } from './health-orphans.js';
import { healthMacProbe } from './health-mac.js';
import { healthCryptoProbe } from './health-crypto.js';
import { healthLogsProbe } from './health-logs.js';
import { healthNovaProbe } from './health-nova.js';
import { healthVersionsProbe } from './health-versions.js';
import { healthContainerProbe } from './health-container.js';
import { hostProbe } from './host.js';
import { libvirtProbe } from './libvirt.js';
import { nodeIdentityProbe } from './node-identity.js';
import { swtpmProbe } from './swtpm.js';
import type { Probe } from './types.js';

/**
 * Every probe the agent runs, listed explicitly (one line each). Order does not matter for
 * correctness: a probe that reads others' results declares them in `after`.
 */
export const allProbes: Probe[] = [
  libvirtProbe,
  swtpmProbe,
  hostProbe,
  guestInventoryProbe,
  nodeIdentityProbe,
  emulationProbe,
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
];
