import { z } from 'zod';

/** Section `guests` of the agent configuration: inventory probe and restart watcher. */
export const guestsConfigSchema = z.strictObject({
  /** The inventory probe (at-risk prediction). */
  inventoryEnabled: z.boolean().default(true),
  /** node-cron schedule of the inventory probe. */
  inventorySchedule: z
    .string()
    .regex(/^\S+( \S+){4,5}$/, 'must be a cron expression with 5 or 6 fields, e.g. "*/5 * * * *"')
    .default('* * * * *'),
  /** The restart watcher (reboot detection, snapshots, lifecycle events). */
  watcherEnabled: z.boolean().default(true),
  /** Changes at every boot; tests point it at a file they rewrite to simulate a reboot. */
  bootIdPath: z.string().startsWith('/').default('/proc/sys/kernel/random/boot_id'),
  /** Boot time comes from its `btime` line. */
  procStatPath: z.string().startsWith('/').default('/proc/stat'),
  /** A guest still down this long after the boot (or after the watch began) has failed to restart. */
  restartDeadlineSeconds: z.number().positive().max(86400).default(900),
  /** How often the set of running vTPM guests is written to the state dir (also at shutdown). */
  snapshotIntervalSeconds: z.number().positive().max(3600).default(60),
  /** Full re-read of libvirt while a watch is open, in case an event was missed. */
  resyncIntervalSeconds: z.number().positive().max(3600).default(30),
  /** nova.conf for `resume_guests_state_on_host_boot`; empty string: do not judge it. */
  novaConfPath: z.string().default('/etc/nova/nova.conf'),
  /** Follow libvirt lifecycle events (`virsh event --all --loop`); off: resync only. */
  eventWatcher: z.boolean().default(true),
  /** Where libvirt's swtpm writes `<domain name>-swtpm.log`. */
  swtpmLogDir: z.string().startsWith('/').default('/var/log/swtpm/libvirt/qemu'),
});

export type GuestsConfig = z.infer<typeof guestsConfigSchema>;
