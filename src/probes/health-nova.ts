import { evaluateNova } from '../health/checks/nova.js';
import { evaluateSecrets } from '../health/checks/secrets.js';
import { GUEST_INVENTORY, guestsFromResults } from '../health/guests.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { loadNovaSettings } from '../health/nova-conf.js';
import { healthProbe } from '../health/probe.js';
import type { CheckResult, HealthProbeData } from '../health/types.js';

/** C11 + C12: Nova vTPM configuration against the guests, and their libvirt secrets. */
export const healthNovaProbe = healthProbe<HealthProbeData>({
  name: HEALTH_PROBE_NAMES.nova,
  title: 'Health: Nova configuration and vTPM secrets',
  description: 'nova.conf swtpm_enabled/virt_type/resume_guests_state_on_host_boot/supported_tpm_secret_security; <encryption secret> per guest',
  toggles: ['nova', 'secrets'],
  after: [GUEST_INVENTORY],
  async run(ctx, results) {
    const h = ctx.config.health;
    const view = guestsFromResults(results);
    const checks: CheckResult[] = [];
    if (h.checks.nova) checks.push(evaluateNova(await loadNovaSettings(h, ctx.hostPath), view));
    if (h.checks.secrets) checks.push(evaluateSecrets(view));
    return { checks };
  },
});
