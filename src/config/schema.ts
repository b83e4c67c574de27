import cron from 'node-cron';
import { z } from 'zod';
import { guestsConfigSchema } from '../guests/config.js';
import { healthConfigSchema } from '../health/config.js';
import { openstackConfigSchema } from '../openstack/config.js';
import { identityConfigSchema } from '../identity/config.js';

/** A node-cron expression (5 or 6 fields). Validated again by node-cron at schedule time. */
const cronExpression = z
  .string()
  .refine((expr) => /^\S+( \S+){4,5}$/.test(expr) && cron.validate(expr), 'must be a cron expression with 5 or 6 fields, e.g. "*/5 * * * *"');

const positiveSeconds = z.number().positive().max(3600);

export const libvirtConfigSchema = z.strictObject({
  /** libvirt connection URI; the agent adds `-r` (read-only socket) for everything but domcapabilities. */
  uri: z.string().min(1).default('qemu:///system'),
  virshPath: z.string().min(1).default('virsh'),
  /** `auto`: kvm when /dev/kvm exists, else qemu (TCG). */
  virtType: z.enum(['auto', 'kvm', 'qemu']).default('auto'),
  /** Machine types to ask domain capabilities for; `default` means libvirt's default machine type. */
  machineTypes: z.array(z.string().min(1)).min(1).default(['default', 'q35']),
  timeoutSeconds: positiveSeconds.default(30),
});

export const swtpmConfigSchema = z.strictObject({
  /** Like Nova's [libvirt] swtpm_user / swtpm_group. */
  user: z.string().min(1).default('tss'),
  group: z.string().min(1).default('tss'),
  /** libvirt's swtpm state directory for the system instance. */
  stateDir: z.string().startsWith('/').default('/var/lib/libvirt/swtpm'),
  swtpmPath: z.string().min(1).default('swtpm'),
  swtpmSetupPath: z.string().min(1).default('swtpm_setup'),
  swtpmIoctlPath: z.string().min(1).default('swtpm_ioctl'),
  timeoutSeconds: positiveSeconds.default(10),
});

export const emulationConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** basic: startup/self-test/random/capability; state: encrypted NV state survives a restart (TPM 2.0). */
  levels: z.array(z.enum(['basic', 'state'])).min(1).default(['basic', 'state']),
  schedule: cronExpression.default('*/10 * * * *'),
  /** Overall limit for one round of emulation checks. */
  timeoutSeconds: positiveSeconds.default(60),
});

export const configSchema = z.strictObject({
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Host paths are resolved under this prefix (a pod mounting the host at /host sets `/host`). */
  hostRoot: z.string().startsWith('/').default('/'),
  /** Where the agent keeps persistent state (systemd StateDirectory). */
  stateDir: z.string().startsWith('/').default('/var/lib/vtpm-agent'),
  listen: z
    .strictObject({
      host: z.string().min(1).default('0.0.0.0'),
      port: z.number().int().min(0).max(65535).default(9643),
    })
    .prefault({}),
  probes: z
    .strictObject({
      schedule: cronExpression.default('*/5 * * * *'),
      timeoutSeconds: positiveSeconds.default(60),
      /** At most this many probes run at once (they spawn virsh and swtpm). */
      concurrency: z.number().int().min(1).max(16).default(2),
    })
    .prefault({}),
  libvirt: libvirtConfigSchema.prefault({}),
  swtpm: swtpmConfigSchema.prefault({}),
  emulation: emulationConfigSchema.prefault({}),
  guests: guestsConfigSchema.prefault({}),
  health: healthConfigSchema.prefault({}),
  openstack: openstackConfigSchema.prefault({}),
  identity: identityConfigSchema.prefault({}),
});

export type AgentConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
