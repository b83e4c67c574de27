import { z } from 'zod';
import { cronExpression } from '../config/cron.js';

/** Section `identity`: how the agent names this compute node the way Nova and Placement do. */
export const identityConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Work out the names Nova and Placement use for this node (exported as vtpm_node_info) and where libvirt\'s paths are reachable.'),
  schedule: cronExpression.default('*/15 * * * *').describe('node-cron schedule; the identity rarely changes, but the libvirt pod (and its pid) may.'),
  novaHost: z.string().min(1).nullable().default(null).describe("Fixed Nova host name; null: nova.conf's [DEFAULT] host, else `hostname --fqdn` (as Atmosphere's nova-compute sets it)."),
  novaConfPath: z.string().default('/etc/nova/nova.conf').describe('nova.conf read for [DEFAULT] host (under the host root); empty string: do not read it.'),
  computeIdPath: z.string().startsWith('/').default('/var/lib/nova/compute_id').describe('Nova (2023.1+) writes the compute node UUID here at its first start.'),
  providerName: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe("Fixed Placement provider name; null: libvirt's host name (`virsh hostname`), which Nova's libvirt driver uses as the node name."),
  hostnamePath: z.string().min(1).default('hostname').describe('hostname binary (looked up on PATH), run as `hostname --fqdn`.'),
  timeoutSeconds: z.number().positive().max(3600).default(10).describe('Limit of each command the identity probe runs (hostname, virsh hostname).'),
  libvirtDaemonNames: z.array(z.string().min(1)).min(1).default(['libvirtd', 'virtqemud']).describe('Process names of the libvirt daemon (monolithic or modular), to find its pid and root.'),
  libvirtContainerPaths: z
    .array(z.string().startsWith('/'))
    .default(['/var/log/swtpm', '/etc/libvirt/secrets', '/var/lib/swtpm-localca'])
    .describe('Paths of the libvirt container the agent must reach (not shared with the host on Atmosphere); each is reported reachable or why not.'),
});

export type IdentityConfig = z.infer<typeof identityConfigSchema>;
