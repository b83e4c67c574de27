import type { CheckId, Finding } from './types.js';

interface ReasonEntry {
  check: CheckId;
  remedy: string;
}

/**
 * The catalogue of stable reason codes (operators grep for them, alerts and runbooks name them).
 * Each carries its remedy; the sentence describing the concrete case is built where it is found.
 */
export const reasons = {
  VTPM_HEALTH_BINARY_MISSING: { check: 'binaries', remedy: 'Install the swtpm and swtpm-tools packages where libvirt runs (same mount namespace/container), then restart libvirt and nova-compute.' },
  VTPM_HEALTH_CERT_TOOL_MISSING: { check: 'binaries', remedy: 'Install swtpm-tools and the certificate tool it uses (gnutls-bin/certtool for swtpm < 0.11, openssl for newer) where libvirt runs.' },
  VTPM_HEALTH_BINARY_OUTSIDE_USR: { check: 'binaries', remedy: 'Use the distribution packages under /usr/bin: MAC profiles (AppArmor, SELinux labels) only cover those paths.' },
  VTPM_HEALTH_LIBVIRT_PATH_UNKNOWN: { check: 'binaries', remedy: 'Run the agent where it can read /proc of the libvirt daemon (hostPID in a pod), or set health.pathSource=agent deliberately.' },
  VTPM_HEALTH_CAPS_UNREADABLE: { check: 'capabilities', remedy: 'Run `swtpm socket --print-capabilities` and `swtpm_setup --print-capabilities` by hand; reinstall swtpm if they fail.' },
  VTPM_HEALTH_CAPS_NOT_READ: { check: 'capabilities', remedy: 'libvirt runs in another container, whose binaries the agent does not execute: run `swtpm socket --print-capabilities` and `swtpm_setup --print-capabilities` inside the libvirt container (cmdarg-pwd-fd, cmdarg-pwdfile-fd and tpm-2.0 must be listed).' },
  VTPM_HEALTH_CAPS_NO_TPM2: { check: 'capabilities', remedy: 'Install an swtpm/libtpms build with TPM 2.0 support.' },
  VTPM_HEALTH_CAPS_NO_PWD_FD: { check: 'capabilities', remedy: 'Upgrade swtpm: Nova always encrypts vTPM state and libvirt passes the key with --key pwdfd (capability cmdarg-pwd-fd).' },
  VTPM_HEALTH_CAPS_NO_PWDFILE_FD: { check: 'capabilities', remedy: 'Upgrade swtpm-tools: encrypted vTPMs need swtpm_setup --pwdfile-fd (capability cmdarg-pwdfile-fd).' },
  VTPM_HEALTH_QEMU_CONF_UNREADABLE: { check: 'principal', remedy: 'Make qemu.conf readable by the agent (or point health.qemuConf at it); until then libvirt defaults are assumed.' },
  VTPM_HEALTH_PRINCIPAL_ROOT_FALLBACK: { check: 'principal', remedy: 'Create the tss user and group (or set swtpm_user/swtpm_group in qemu.conf): libvirt silently runs swtpm as root without them.' },
  VTPM_HEALTH_PRINCIPAL_UNKNOWN: { check: 'principal', remedy: 'Create the user/group named in qemu.conf swtpm_user/swtpm_group, or fix the names; restart libvirt.' },
  VTPM_HEALTH_PRINCIPAL_MISMATCH: { check: 'principal', remedy: 'Make qemu.conf swtpm_user/swtpm_group and nova.conf [libvirt] swtpm_user/swtpm_group name the same principal (same UID/GID in every container), then restart libvirt and nova-compute.' },
  VTPM_HEALTH_NOVA_PRINCIPAL_UNKNOWN: { check: 'principal', remedy: 'Create the user/group named in nova.conf [libvirt] swtpm_user/swtpm_group or fix the names: nova-compute refuses to start otherwise.' },
  VTPM_HEALTH_NOVA_CONF_UNREADABLE: { check: 'principal', remedy: 'Let the agent read nova.conf (or point health.novaConf at it) so it can compare principals.' },
  VTPM_HEALTH_SWTPM_SETUP_CONF_UNREADABLE: { check: 'localca', remedy: 'Reinstall swtpm-tools or fix the permissions of swtpm_setup.conf so the swtpm principal can read it.' },
  VTPM_HEALTH_LOCALCA_CONF_UNREADABLE: { check: 'localca', remedy: 'Fix create_certs_tool_config in swtpm_setup.conf and make the file readable by the swtpm principal.' },
  VTPM_HEALTH_LOCALCA_DIR_MISSING: { check: 'localca', remedy: 'Create the local CA directory: `install -d -o <swtpm_user> -g root -m 0750 <statedir>`.' },
  VTPM_HEALTH_LOCALCA_DIR_NOT_USABLE: { check: 'localca', remedy: 'chown -R <swtpm_user>:root <statedir> and chmod 0750 <statedir>; new vTPM guests cannot be created until then.' },
  VTPM_HEALTH_LOCALCA_FILE_NOT_USABLE: { check: 'localca', remedy: 'chown -R <swtpm_user>:root <statedir> (someone ran swtpm_setup --create-ek-cert as another user); new vTPM guests cannot be created until then.' },
  VTPM_HEALTH_LOCALCA_UNREADABLE_BY_AGENT: { check: 'localca', remedy: 'The agent itself cannot look inside the local CA (its result is unknown, not pass): add the agent user to group tss (SupplementaryGroups=tss) or grant an ACL, e.g. `setfacl -m u:vtpm-agent:rx <statedir>`; or run `vtpm-agent check` as root.' },
  VTPM_HEALTH_LOCALCA_PATH_NOT_TRAVERSABLE: { check: 'localca', remedy: 'Give the swtpm principal search (x) permission on every parent directory of the local CA.' },
  VTPM_HEALTH_LOCALCA_PRINCIPAL_UNKNOWN: { check: 'localca', remedy: 'Fix what C3 (principal) reports: the local CA can only be judged against the account swtpm runs as.' },
  VTPM_HEALTH_STATE_UNREADABLE_BY_AGENT: { check: 'guest-state', remedy: 'The agent itself cannot look at this TPM state path (its result is unknown, not pass or missing): run the agent as root, or grant it read and search access (e.g. group tss, or an ACL on the swtpm state directory).' },
  VTPM_HEALTH_GUEST_STATE_PRINCIPAL_UNKNOWN: { check: 'guest-state', remedy: 'Fix what C3 (principal) reports: per-guest TPM state ownership can only be judged against the account swtpm runs as.' },
  VTPM_HEALTH_GUESTS_UNKNOWN: { check: 'guest-state', remedy: 'Check the guest-inventory probe (libvirt reachable?); per-guest checks need it.' },
  VTPM_HEALTH_STATE_MISSING: { check: 'guest-state', remedy: 'Restore the TPM state directory from backup before starting the guest: libvirt will otherwise create a brand-new TPM (BitLocker recovery, lost keys).' },
  VTPM_HEALTH_STATE_EMPTY: { check: 'guest-state', remedy: 'Restore the TPM state file from backup; an empty permall file cannot be loaded.' },
  VTPM_HEALTH_STATE_WRONG_OWNER: { check: 'guest-state', remedy: 'chown -R <swtpm_user>:<swtpm_group> the guest TPM state directory (libvirt re-chowns only on its own starts; Nova chowns to its own swtpm_user on migration).' },
  VTPM_HEALTH_STATE_NOT_TRAVERSABLE: { check: 'guest-state', remedy: 'Give the swtpm principal search (x) permission on the parents of the TPM state directory (libvirt uses 0711).' },
  VTPM_HEALTH_STATE_LOCK_WRONG_OWNER: { check: 'guest-state', remedy: 'Remove or chown the foreign-owned .lock file while the guest is stopped; swtpm cannot open it otherwise.' },
  VTPM_HEALTH_STATE_SHARED_FS: { check: 'guest-state', remedy: 'TPM state on shared storage needs swtpm with cmdarg-migration and matching MAC rules; keep it local otherwise.' },
  VTPM_HEALTH_STATE_LOW_SPACE: { check: 'guest-state', remedy: 'Free space on the filesystem holding the TPM state: swtpm fails state writes when it is full.' },
  VTPM_HEALTH_PROC_UNREADABLE: { check: 'orphans', remedy: "Give the agent the host's /proc (hostPID in a pod; no hidepid for its user), or run `vtpm-agent check` as root." },
  VTPM_HEALTH_ORPHANS_UNREADABLE_BY_AGENT: { check: 'orphans', remedy: 'The agent cannot read what orphan detection needs (/proc/locks, the swtpm state or run directory, a lock file), so that part is unknown, not pass: run the agent as root with the host PID namespace.' },
  VTPM_HEALTH_ORPHAN_SWTPM: { check: 'orphans', remedy: 'Kill the orphaned swtpm (its guest is not running), then start the guest.' },
  VTPM_HEALTH_ORPHAN_LOCK_HOLDER: { check: 'orphans', remedy: 'Kill the process holding the TPM state lock of a stopped guest; the guest cannot start (CMD_INIT fails) while it holds it.' },
  VTPM_HEALTH_ORPHAN_NO_CTRL_SOCKET: { check: 'orphans', remedy: 'This swtpm lost its control socket, so libvirt cannot stop it; stop the guest and kill the process.' },
  VTPM_HEALTH_STALE_PIDFILE: { check: 'orphans', remedy: 'Remove the stale swtpm pid file (its process is gone).' },
  VTPM_HEALTH_STALE_SOCKET: { check: 'orphans', remedy: 'Remove the stale swtpm socket (no swtpm serves it).' },
  VTPM_HEALTH_APPARMOR_PROFILE_MISSING: { check: 'apparmor', remedy: 'Load the swtpm AppArmor profile (apparmor_parser -r /etc/apparmor.d/usr.bin.swtpm) or reinstall swtpm.' },
  VTPM_HEALTH_APPARMOR_PROFILE_COMPLAIN: { check: 'apparmor', remedy: 'Put the swtpm profile back into enforce mode (aa-enforce) once its rules cover the configured paths.' },
  VTPM_HEALTH_APPARMOR_PROFILE_PATHS: { check: 'apparmor', remedy: 'Add rules for this path to /etc/apparmor.d/local/usr.bin.swtpm (the profile only allows the default state, log and runtime paths), or move it back to the default.' },
  VTPM_HEALTH_APPARMOR_DENIED: { check: 'apparmor', remedy: 'Add the denied path to /etc/apparmor.d/local/usr.bin.swtpm (or update swtpm/libvirt/apparmor packages); do not disable AppArmor.' },
  VTPM_HEALTH_SELINUX_PERMISSIVE: { check: 'selinux', remedy: 'Permissive SELinux hides swtpm policy problems that will break guests once enforcing is restored.' },
  VTPM_HEALTH_SELINUX_LABEL: { check: 'selinux', remedy: 'restorecon -v /usr/bin/swtpm* (or reinstall from RPM): swtpm must be swtpm_exec_t.' },
  VTPM_HEALTH_SELINUX_MODULES_MISSING: { check: 'selinux', remedy: 'Install swtpm-selinux (modules swtpm, swtpm_libvirt, swtpm_svirt) and a current selinux-policy.' },
  VTPM_HEALTH_SELINUX_DENIED: { check: 'selinux', remedy: 'Update selinux-policy/swtpm-selinux; check labels with restorecon -n -v on the swtpm state, log and localca dirs.' },
  VTPM_HEALTH_FIPS_ENABLED: { check: 'crypto', remedy: 'Use swtpm >= 0.10 with libtpms >= 0.10 (it disables OpenSSL FIPS mode for libtpms) and watch swtpm logs for "Entering failure mode".' },
  VTPM_HEALTH_CRYPTO_POLICY_STRICT: { check: 'crypto', remedy: 'A crypto policy without SHA-1 signatures breaks TPM 2.0 features; use swtpm >= 0.10 or a policy module allowing them for swtpm.' },
  VTPM_HEALTH_LOG_FAILURE: { check: 'logs', remedy: 'Read the quoted log line; the reason code in details.kind maps to docs/failure-modes §0.' },
  VTPM_HEALTH_LOG_UNREADABLE: { check: 'logs', remedy: 'Let the agent read the swtpm and QEMU log directories (in containers, mount them from the host).' },
  VTPM_HEALTH_TPM_RESET: { check: 'tpm-reset', remedy: 'The guest now has a new, empty TPM (new EK; BitLocker asks for its recovery key). Restore the TPM state from backup if the old one is still needed, and find what removed it.' },
  VTPM_HEALTH_NOVA_VTPM_DISABLED_WITH_GUESTS: { check: 'nova-config', remedy: 'Set [libvirt] swtpm_enabled = True in nova.conf: nova-compute refuses to start with vTPM instances otherwise.' },
  VTPM_HEALTH_NOVA_VTPM_UNSUPPORTED: { check: 'nova-config', remedy: 'Install swtpm and swtpm-tools where libvirt runs (see C1/C2) and restart libvirt and nova-compute, or set [libvirt] swtpm_enabled = False.' },
  VTPM_HEALTH_NOVA_VIRT_TYPE: { check: 'nova-config', remedy: "Set [libvirt] virt_type to 'kvm' or 'qemu': Nova supports vTPM only there." },
  VTPM_HEALTH_NOVA_USER_MODE_NO_AUTORESTART: { check: 'nova-config', remedy: "With only 'user' secret security, vTPM guests cannot be resumed on host boot; allow 'host' or 'deployment' in supported_tpm_secret_security (Nova 2026.1+)." },
  VTPM_HEALTH_NOVA_CONF_INVALID: { check: 'nova-config', remedy: 'Fix the value in nova.conf; oslo.config would reject it.' },
  VTPM_HEALTH_SECRET_MISSING: { check: 'secrets', remedy: 'Re-create the libvirt secret (host mode: hard-reboot the instance so Nova re-creates it); the guest cannot start without it.' },
  VTPM_HEALTH_SECRET_UNENCRYPTED_NOVA: { check: 'secrets', remedy: 'Nova always encrypts vTPM state; an unencrypted Nova guest was created outside Nova or by an old release: check it.' },
  VTPM_HEALTH_SECRET_ORPHANED: { check: 'secrets', remedy: 'Undefine libvirt vtpm secrets whose instance no longer exists (virsh secret-undefine).' },
  VTPM_HEALTH_SECRETS_UNKNOWN: { check: 'secrets', remedy: 'The libvirt secret list could not be read; check libvirt access of the agent.' },
  VTPM_HEALTH_VERSION_UNKNOWN: { check: 'versions', remedy: 'The agent could not determine this version; check that the component is installed where the agent can run it.' },
  VTPM_HEALTH_LIBVIRT_NO_KEEP_TPM: { check: 'versions', remedy: 'Upgrade libvirt to >= 8.9.0: older versions delete TPM state on every undefine (no VIR_DOMAIN_UNDEFINE_KEEP_TPM).' },
  VTPM_HEALTH_LIBVIRT_DAEMON_NOT_FOUND: { check: 'container', remedy: 'No libvirtd/virtqemud process is visible; run the agent with the host PID namespace.' },
  VTPM_HEALTH_CONTAINER_NO_PTRACE: { check: 'container', remedy: 'Grant CAP_SYS_PTRACE to the libvirt container or upgrade libvirt to >= 8.1.0 ("Could not get process id of swtpm").' },
  VTPM_HEALTH_CONTAINER_UNREADABLE_BY_AGENT: { check: 'container', remedy: "The agent cannot read the libvirt daemon's /proc entries (root, status, mountinfo), so the result is unknown, not pass: run the agent as root with the host PID namespace (hostPID: true) and CAP_SYS_PTRACE, or run `vtpm-agent check` as root." },
  VTPM_HEALTH_CONTAINER_DIR_NOT_HOST_MOUNT: { check: 'container', remedy: 'Mount this directory from the host into the libvirt container: it is lost when the container restarts.' },
} as const satisfies Record<string, ReasonEntry>;

export type ReasonCode = keyof typeof reasons;

export function finding(
  reason: ReasonCode,
  status: Finding['status'],
  message: string,
  extra: { subject?: string; details?: Record<string, unknown>; remedy?: string } = {},
): Finding {
  return {
    reason,
    status,
    message,
    remedy: extra.remedy ?? reasons[reason].remedy,
    ...(extra.subject !== undefined ? { subject: extra.subject } : {}),
    ...(extra.details !== undefined ? { details: extra.details } : {}),
  };
}
