import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { NOVA_SETTINGS, type NovaVtpmSettings } from '../../host/nova-conf.js';
import { guestsFromResults, type GuestsView } from '../guests.js';
import { evaluateSecrets } from './secrets.js';
import { GUEST_INVENTORY } from '../../guests/types.js';
import { healthProbe } from '../probe.js';
import { LIBVIRT, type LibvirtFacts } from '../../libvirt/facts.js';

/**
 * C11: nova.conf against itself and against the vTPM guests on the host — the configurations that
 * make nova-compute refuse to start (`_check_vtpm_support`) or leave guests down after a reboot.
 */
/**
 * `libvirtEmulator`: whether libvirt's domain capabilities offer the TPM emulator backend (from
 * the libvirt probe); null when unknown.
 */
export function evaluateNova(nova: NovaVtpmSettings | null, view: GuestsView | null, libvirtEmulator: boolean | null = null): CheckResult {
  if (!nova) return checkResult('nova-config', [], { nova: null }, 'not-applicable');
  const findings: Finding[] = [];
  for (const bad of nova.invalid) {
    findings.push(finding('VTPM_HEALTH_NOVA_CONF_INVALID', 'fail', `nova.conf ${bad.option} = "${bad.value}" is not a boolean.`, { subject: bad.option }));
  }
  const novaGuests = view?.guests.filter((g) => g.nova) ?? [];
  if (!nova.swtpmEnabled && novaGuests.length > 0) {
    findings.push(
      finding('VTPM_HEALTH_NOVA_VTPM_DISABLED_WITH_GUESTS', 'fail', `nova.conf [libvirt] swtpm_enabled is false but ${novaGuests.length} Nova vTPM guest(s) are defined (${novaGuests.slice(0, 5).map((g) => g.name).join(', ')}): nova-compute refuses to start ("This host has instances with the vTPM feature enabled, but the host is not correctly configured").`, {
        details: { guests: novaGuests.map((g) => g.name) },
      }),
    );
  }
  if (nova.swtpmEnabled && libvirtEmulator === false) {
    findings.push(finding('VTPM_HEALTH_NOVA_VTPM_UNSUPPORTED', 'fail', "nova.conf enables vTPM, but libvirt's domain capabilities offer no TPM emulator: nova-compute refuses to start (\"vTPM support is configured but it's not supported by libvirt.\").", { subject: '[libvirt] swtpm_enabled' }));
  }
  if (nova.swtpmEnabled && !['kvm', 'qemu'].includes(nova.virtType)) {
    findings.push(finding('VTPM_HEALTH_NOVA_VIRT_TYPE', 'fail', `vTPM support requires '[libvirt] virt_type' of 'qemu' or 'kvm'; found '${nova.virtType}'.`, { subject: '[libvirt] virt_type' }));
  }
  const allowed = nova.supportedTpmSecretSecurity ?? ['user'];
  const userOnly = allowed.every((m) => m === 'user');
  const userGuests = novaGuests.filter((g) => g.secretMode === 'user' || g.secretMode === 'unknown');
  if (nova.swtpmEnabled && nova.resumeGuestsStateOnHostBoot && userOnly && userGuests.length > 0) {
    findings.push(
      finding('VTPM_HEALTH_NOVA_USER_MODE_NO_AUTORESTART', 'warn', `resume_guests_state_on_host_boot is on, but only 'user' TPM secret security is allowed: ${userGuests.length} vTPM guest(s) will not come back after a host reboot (no user token to read the Barbican secret).`, {
        details: { guests: userGuests.map((g) => g.name) },
      }),
    );
  }
  return checkResult('nova-config', findings, {
    files: nova.files,
    swtpmEnabled: nova.swtpmEnabled,
    virtType: nova.virtType,
    resumeGuestsStateOnHostBoot: nova.resumeGuestsStateOnHostBoot,
    supportedTpmSecretSecurity: nova.supportedTpmSecretSecurity,
    novaVtpmGuests: view ? novaGuests.length : null,
  });
}

/** Does any probed machine type offer the emulator backend? null when the libvirt probe has no answer. */
function emulatorOffered(facts: LibvirtFacts | undefined): boolean | null {
  const caps = facts?.machines.map((m) => m.capabilities).filter((c) => c !== null) ?? [];
  if (caps.length === 0) return null;
  return caps.some((c) => c!.tpm.supported && c!.tpm.backendModels.includes('emulator'));
}

/** C11 + C12: Nova vTPM configuration against the guests, and their libvirt secrets. */
export const healthNovaProbe = healthProbe<HealthProbeData>({
  name: 'health-nova',
  title: 'Health: Nova configuration and vTPM secrets',
  description: 'nova.conf swtpm_enabled/virt_type/resume_guests_state_on_host_boot/supported_tpm_secret_security; <encryption secret> per guest',
  toggles: ['nova-config', 'secrets'],
  after: [GUEST_INVENTORY, LIBVIRT],
  async run(ctx, results) {
    const h = ctx.config.health;
    const view = guestsFromResults(results);
    const checks: CheckResult[] = [];
    const libvirt = results.get(LIBVIRT);
    const emulator = libvirt?.ok ? emulatorOffered(libvirt.data) : null;
    if (h.checks['nova-config']) checks.push(evaluateNova(await ctx.facts.get(NOVA_SETTINGS), view, emulator));
    if (h.checks.secrets) checks.push(evaluateSecrets(view));
    return { checks };
  },
});
