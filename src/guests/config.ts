import { z } from 'zod';
import { cronExpression } from '../config/cron.js';

/** Section `guests` of the agent configuration: inventory probe and restart watcher. */
export const guestsConfigSchema = z.strictObject({
  inventoryEnabled: z
    .boolean()
    .default(true)
    .describe(
      'Inventory of vTPM guests (Nova metadata, secret mode) and the guests at risk of not restarting after a host reboot. false: no schedule, no guest metrics or report section; the restart watcher, when enabled, still runs this same inventory on demand (events, deadlines, snapshots).',
    ),
  inventorySchedule: cronExpression
    .default('* * * * *')
    .describe('node-cron schedule of the inventory probe.'),
  watcherEnabled: z.boolean().default(true).describe('Follow vTPM guests across host reboots: snapshots, reboot detection, restart outcome with reasons.'),
  bootIdPath: z.string().startsWith('/').default('/proc/sys/kernel/random/boot_id').describe('Changes at every boot; a different id than the last snapshot\'s means the host rebooted.'),
  procStatPath: z.string().startsWith('/').default('/proc/stat').describe('Boot time comes from its btime line.'),
  restartDeadlineSeconds: z.number().positive().max(86400).default(900).describe('A guest still down this long after the boot (or after the watch began) has failed to restart.'),
  snapshotIntervalSeconds: z.number().positive().max(3600).default(60).describe('How often the running vTPM guests are written to <stateDir>/guests/snapshot.json (also at shutdown).'),
  resyncIntervalSeconds: z.number().positive().max(3600).default(30).describe('Full re-read of libvirt while guests are pending or down, in case an event was missed.'),
  novaConfPath: z.string().default('/etc/nova/nova.conf').describe('nova.conf, for [DEFAULT] resume_guests_state_on_host_boot; empty: do not judge it.'),
  eventWatcher: z.boolean().default(true).describe('Follow libvirt lifecycle events (virsh event --all --loop); false: periodic resync only.'),
  swtpmLogDir: z.string().startsWith('/').default('/var/log/swtpm/libvirt/qemu').describe('Where libvirt\'s swtpm writes <domain name>-swtpm.log (read to explain a failed restart).'),
});

export type GuestsConfig = z.infer<typeof guestsConfigSchema>;
