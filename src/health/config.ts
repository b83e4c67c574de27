import { z } from 'zod';
import { cronExpression as cron } from '../config/cron.js';

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
  enabled: z.boolean().default(true).describe('Run the host health checks (failure-modes checklist C1-C14).'),
  schedule: cron.default('*/5 * * * *').describe('When the health checks run (cron).'),
  timeoutSeconds: z.number().positive().max(600).default(45).describe('Limit for one health probe run.'),
  /** libvirt's QEMU driver config: swtpm_user / swtpm_group. */
  qemuConf: absolute.default('/etc/libvirt/qemu.conf').describe("libvirt's QEMU driver config (swtpm_user, swtpm_group)."),
  /** nova.conf files in oslo.config order (later files override earlier ones); missing files are skipped. */
  novaConf: z.array(absolute).default(['/etc/nova/nova.conf']).describe('nova.conf files in oslo.config order (later override earlier); missing files are skipped.'),
  swtpmSetupConf: absolute.default('/etc/swtpm_setup.conf').describe('swtpm_setup.conf; the local CA is found through its create_certs_tool_config.'),
  passwdFile: absolute.default('/etc/passwd').describe('Host accounts, read directly (not NSS) so a pod sees the host users.'),
  groupFile: absolute.default('/etc/group').describe('Host groups, read directly.'),
  /** libvirt's per-guest swtpm logs (`<domain-name>-swtpm.log`). */
  swtpmLogDir: absolute.default('/var/log/swtpm/libvirt/qemu').describe("libvirt's per-guest swtpm logs (<domain-name>-swtpm.log)."),
  /** QEMU domain logs (`<domain-name>.log`). */
  qemuLogDir: absolute.default('/var/log/libvirt/qemu').describe('QEMU domain logs (<domain-name>.log).'),
  /** libvirt's swtpm pid and socket files. */
  swtpmRunDir: absolute.default('/run/libvirt/qemu/swtpm').describe("libvirt's swtpm pid and socket files."),
  /** Where MAC denials are logged (kernel log for AppArmor, audit log for SELinux); missing files are skipped. */
  libvirtSecretsDir: absolute.default('/etc/libvirt/secrets').describe("libvirt's persistent secret store (host-mode vTPM keys); must be a host mount when libvirt runs in a container."),
  macLogFiles: z.array(absolute).default(['/var/log/audit/audit.log', '/var/log/kern.log']).describe('Where AppArmor (kernel log) and SELinux (audit log) denials are logged; missing files are skipped.'),
  /**
   * Whose PATH decides whether the swtpm binaries are present: `libvirt-daemon` reads the running
   * libvirtd/virtqemud's environment (what libvirt really uses), falling back to the agent's.
   */
  pathSource: z.enum(['libvirt-daemon', 'agent']).default('libvirt-daemon').describe("Whose PATH decides whether swtpm binaries are present: the running libvirt daemon's (falls back to the agent's) or the agent's."),
  /** Below this much free space on the filesystem of the swtpm state dir the check warns. */
  minFreeBytes: z.number().int().nonnegative().default(256 * 1024 * 1024).describe('Warn below this much free space on the filesystem of the swtpm state dir.'),
  /** A log failure line keeps its check red for this long after it was read. */
  logFailureWindowSeconds: z.number().int().positive().default(3600).describe('A log failure line or TPM reset keeps its check red this long after it was read.'),
  /** Upper bound on bytes read from one log file per run (the rest is read next run). */
  logMaxBytesPerRun: z.number().int().positive().default(8 * 1024 * 1024).describe('Upper bound on bytes read from one log file per run (the rest is read next run).'),
  /** A TPM state file that shrinks below this fraction of its largest size was re-created. */
  stateShrinkRatio: z.number().positive().max(1).default(0.5).describe('A TPM state file shrinking below this fraction of its largest size was re-created (a reset).'),
  checks: checksSchema.prefault({}),
});

export type HealthConfig = z.infer<typeof healthConfigSchema>;
export type HealthCheckToggle = keyof HealthConfig['checks'];
