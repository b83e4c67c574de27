import { evaluateNova } from '../health/checks/nova.js';
import { evaluateSecrets } from '../health/checks/secrets.js';
import { GUEST_INVENTORY } from '../guests/types.js';
import { guestsFromResults } from '../health/guests.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { loadNovaSettings } from '../health/nova-conf.js';
import { healthProbe } from '../health/probe.js';
import type { CheckResult, HealthProbeData } from '../health/types.js';
import { LIBVIRT, type LibvirtFacts } from '../libvirt/facts.js';

/** Does any probed machine type offer the emulator backend? null when the libvirt probe has no answer. */
function emulatorOffered(facts: LibvirtFacts | undefined): boolean | null {
  const caps = facts?.machines.map((m) => m.capabilities).filter((c) => c !== null) ?? [];
  if (caps.length === 0) return null;
  return caps.some((c) => c!.tpm.supported && c!.tpm.backendModels.includes('emulator'));
}

/** C11 + C12: Nova vTPM configuration against the guests, and their libvirt secrets. */
export const healthNovaProbe = healthProbe<HealthProbeData>({
  name: HEALTH_PROBE_NAMES.nova,
  title: 'Health: Nova configuration and vTPM secrets',
  description: 'nova.conf swtpm_enabled/virt_type/resume_guests_state_on_host_boot/supported_tpm_secret_security; <encryption secret> per guest',
  toggles: ['nova', 'secrets'],
  after: [GUEST_INVENTORY, LIBVIRT],
  async run(ctx, results) {
    const h = ctx.config.health;
    const view = guestsFromResults(results);
    const checks: CheckResult[] = [];
    const libvirt = results.get(LIBVIRT);
    const emulator = libvirt?.ok ? emulatorOffered(libvirt.data) : null;
    if (h.checks.nova) checks.push(evaluateNova(await loadNovaSettings(h, ctx.hostPath), view, emulator));
    if (h.checks.secrets) checks.push(evaluateSecrets(view));
    return { checks };
  },
});
