import { z } from 'zod';

/** A node-cron expression (5 or 6 fields); node-cron validates it again at schedule time. */
const cron = z.string().regex(/^\S+( \S+){4,5}$/, 'must be a cron expression with 5 or 6 fields, e.g. "*/5 * * * *"');
const absolute = z.string().startsWith('/', 'must be an absolute path');

/** Every host check can be turned off on its own (a site that knowingly differs keeps the rest). */
const checksSchema = z.strictObject({
  binaries: z.boolean().default(true),
  capabilities: z.boolean().default(true),
  principal: z.boolean().default(true),
  localca: z.boolean().default(true),
  guestState: z.boolean().default(true),
  orphans: z.boolean().default(true),
  apparmor: z.boolean().default(true),
  selinux: z.boolean().default(true),
  crypto: z.boolean().default(true),
  logs: z.boolean().default(true),
  tpmReset: z.boolean().default(true),
  nova: z.boolean().default(true),
  secrets: z.boolean().default(true),
  versions: z.boolean().default(true),
  container: z.boolean().default(true),
});

export const healthConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  schedule: cron.default('*/5 * * * *'),
  timeoutSeconds: z.number().positive().max(600).default(45),
  /** libvirt's QEMU driver config: swtpm_user / swtpm_group. */
  qemuConf: absolute.default('/etc/libvirt/qemu.conf'),
  /** nova.conf files in oslo.config order (later files override earlier ones); missing files are skipped. */
  novaConf: z.array(absolute).default(['/etc/nova/nova.conf']),
  swtpmSetupConf: absolute.default('/etc/swtpm_setup.conf'),
  passwdFile: absolute.default('/etc/passwd'),
  groupFile: absolute.default('/etc/group'),
  /** libvirt's per-guest swtpm logs (`<domain-name>-swtpm.log`). */
  swtpmLogDir: absolute.default('/var/log/swtpm/libvirt/qemu'),
  /** QEMU domain logs (`<domain-name>.log`). */
  qemuLogDir: absolute.default('/var/log/libvirt/qemu'),
  /** libvirt's swtpm pid and socket files. */
  swtpmRunDir: absolute.default('/run/libvirt/qemu/swtpm'),
  /** Where MAC denials are logged (kernel log for AppArmor, audit log for SELinux); missing files are skipped. */
  macLogFiles: z.array(absolute).default(['/var/log/audit/audit.log', '/var/log/kern.log']),
  /**
   * Whose PATH decides whether the swtpm binaries are present: `libvirt-daemon` reads the running
   * libvirtd/virtqemud's environment (what libvirt really uses), falling back to the agent's.
   */
  pathSource: z.enum(['libvirt-daemon', 'agent']).default('libvirt-daemon'),
  /** Below this much free space on the filesystem of the swtpm state dir the check warns. */
  minFreeBytes: z.number().int().nonnegative().default(256 * 1024 * 1024),
  /** A log failure line keeps its check red for this long after it was read. */
  logFailureWindowSeconds: z.number().int().positive().default(3600),
  /** Upper bound on bytes read from one log file per run (the rest is read next run). */
  logMaxBytesPerRun: z.number().int().positive().default(8 * 1024 * 1024),
  /** A TPM state file that shrinks below this fraction of its largest size was re-created. */
  stateShrinkRatio: z.number().positive().max(1).default(0.5),
  checks: checksSchema.prefault({}),
});

export type HealthConfig = z.infer<typeof healthConfigSchema>;
export type HealthCheckToggle = keyof HealthConfig['checks'];
