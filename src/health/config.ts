import { z } from 'zod';
import { cronExpression as cron } from '../config/cron.js';

const absolute = z.string().startsWith('/', 'must be an absolute path');

/**
 * Every host check can be turned off on its own (a site that knowingly differs keeps the rest).
 * The keys are the check ids (health/types.ts CheckId): one name in config, reports and metric labels.
 */
const toggle = (what: string) => z.boolean().default(true).describe(what);
const checksSchema = z.strictObject({
  binaries: toggle('C1: swtpm, swtpm_setup, swtpm_ioctl and the certificate tools on libvirt\'s PATH, under /usr.'),
  capabilities: toggle('C2: swtpm and swtpm_setup capabilities encrypted vTPMs need (cmdarg-pwd-fd, cmdarg-pwdfile-fd, tpm-2.0).'),
  principal: toggle('C3: the swtpm user/group of qemu.conf agree with nova.conf\'s swtpm_user/swtpm_group.'),
  localca: toggle('C4: the swtpm local CA (/var/lib/swtpm-localca) usable by the swtpm principal.'),
  'guest-state': toggle('C5: per-guest TPM state: present, owned by and reachable for the swtpm principal, not on shared storage, space left.'),
  orphans: toggle('C6: swtpm processes, pid and socket files left by guests that are gone, holding their lock.'),
  apparmor: toggle('C7: AppArmor denials for swtpm and paths missing from its profile.'),
  selinux: toggle('C8: SELinux AVC denials for swtpm and mislabelled state files.'),
  crypto: toggle('C9: FIPS mode and a system crypto policy that disables what swtpm and TPM 2.0 need.'),
  logs: toggle('C10: known failure lines in swtpm and QEMU logs, per guest.'),
  'tpm-reset': toggle('C10: TPM resets — a guest\'s vTPM re-manufactured or its state shrunk (BitLocker recovery).'),
  'nova-config': toggle('C11: nova.conf [libvirt] swtpm_enabled, virt_type and secret modes agree with this host and its guests.'),
  secrets: toggle('C12: vTPM encryption secrets in libvirt: present for each guest that needs one, none orphaned.'),
  versions: toggle('C13: libvirt, QEMU, swtpm, libtpms and OpenSSL versions, with the known version gates.'),
  container: toggle('C14: containerised libvirt — its pid, root and the paths the agent must reach.'),
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

/**
 * Toggle spellings accepted besides the check ids: the names before the ids became the keys, and
 * the camelCase that environment variables produce (VTPM_AGENT__HEALTH__CHECKS__GUEST_STATE).
 */
const TOGGLE_ALIASES: Readonly<Record<string, HealthCheckToggle>> = { guestState: 'guest-state', tpmReset: 'tpm-reset', nova: 'nova-config', novaConfig: 'nova-config' };

/** Renames aliased toggles in raw configuration (before validation); an explicit check id wins. */
export function canonicalToggles(raw: Record<string, unknown>): void {
  const health = raw.health;
  if (typeof health !== 'object' || health === null) return;
  const checks = (health as Record<string, unknown>).checks;
  if (typeof checks !== 'object' || checks === null) return;
  const toggles = checks as Record<string, unknown>;
  for (const [alias, id] of Object.entries(TOGGLE_ALIASES)) {
    if (!(alias in toggles)) continue;
    if (!(id in toggles)) toggles[id] = toggles[alias];
    delete toggles[alias];
  }
}
