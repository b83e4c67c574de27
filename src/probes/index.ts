import { emulationProbe } from './emulation.js';
import { guestInventoryProbe } from './guest-inventory.js';
import { hostProbe } from './host.js';
import { libvirtProbe } from './libvirt.js';
import { nodeIdentityProbe } from './node-identity.js';
import { swtpmProbe } from './swtpm.js';
import { healthProbes } from '../health/index.js';
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
  ...healthProbes,
];
