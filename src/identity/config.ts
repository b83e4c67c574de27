import { z } from 'zod';
import { cronExpression } from '../config/cron.js';

/** Section `identity`: how the agent names this compute node the way Nova and Placement do. */
export const identityConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** node-cron schedule; the identity rarely changes, but the libvirt pod (and its pid) may. */
  schedule: cronExpression.default('*/15 * * * *'),
  /** Fixed Nova host name; null: nova.conf's `[DEFAULT] host`, else `hostname --fqdn` (as Atmosphere's nova-compute sets it). */
  novaHost: z.string().min(1).nullable().default(null),
  /** nova.conf read for `[DEFAULT] host` (under the host root); empty string: do not read it. */
  novaConfPath: z.string().default('/etc/nova/nova.conf'),
  /** Nova (2023.1+) writes the compute node UUID here at its first start. */
  computeIdPath: z.string().startsWith('/').default('/var/lib/nova/compute_id'),
  /** Fixed Placement provider name; null: libvirt's host name (`virsh hostname`), which Nova's libvirt driver uses as the node name. */
  providerName: z.string().min(1).nullable().default(null),
  hostnamePath: z.string().min(1).default('hostname'),
  timeoutSeconds: z.number().positive().max(3600).default(10),
  /** Process names of the libvirt daemon (monolithic or modular). */
  libvirtDaemonNames: z.array(z.string().min(1)).min(1).default(['libvirtd', 'virtqemud']),
  /** Paths of the libvirt container the agent must reach (not shared with the host on Atmosphere). */
  libvirtContainerPaths: z
    .array(z.string().startsWith('/'))
    .default(['/var/log/swtpm', '/etc/libvirt/secrets', '/var/lib/swtpm-localca']),
});

export type IdentityConfig = z.infer<typeof identityConfigSchema>;
