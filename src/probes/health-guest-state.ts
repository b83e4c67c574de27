import { checkGuestState } from '../health/checks/guest-state.js';
import { GUEST_INVENTORY } from '../guests/types.js';
import { guestsFromResults } from '../health/guests.js';
import type { GuestStateProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { loadPrincipal } from '../host/swtpm-principal.js';
import { healthProbe } from '../health/probe.js';
import { finding } from '../health/reasons.js';
import { checkResult } from '../health/types.js';
import type { BinariesProbeData } from './health-binaries.js';
import { libvirtViewResolver } from '../util/container-paths.js';

/** C5: per vTPM guest, the TPM state libvirt hands to swtpm. */
export const healthGuestStateProbe = healthProbe<GuestStateProbeData>({
  name: HEALTH_PROBE_NAMES.guestState,
  title: 'Health: per-guest TPM state',
  description: 'state file present and non-empty, owners, parents searchable, .lock owner, filesystem type and free space',
  toggles: ['guestState'],
  after: [GUEST_INVENTORY, HEALTH_PROBE_NAMES.binaries],
  async run(ctx, results) {
    const view = guestsFromResults(results);
    if (!view) {
      return {
        checks: [checkResult('guest-state', [finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'warn', 'The guest inventory is not available, so per-guest TPM state cannot be checked.')])],
        guests: [],
      };
    }
    const res = await loadPrincipal(ctx.config.health, await libvirtViewResolver(ctx.hostPath));
    if (!res.principal) return { checks: [checkResult('guest-state', [], { note: 'the swtpm principal is unknown (see C3)' }, 'not-applicable')], guests: [] };
    const caps = results.get<BinariesProbeData>(HEALTH_PROBE_NAMES.binaries)?.data?.socketFeatures ?? null;
    const check = await checkGuestState({
      guests: view.guests,
      stateDir: ctx.config.swtpm.stateDir,
      principal: res.principal,
      accounts: res.accounts,
      hostPath: ctx.hostPath,
      minFreeBytes: ctx.config.health.minFreeBytes,
      socketFeatures: caps,
      swtpmLogDir: ctx.config.health.swtpmLogDir,
    });
    return { checks: [check], guests: (check.facts?.guests as GuestStateProbeData['guests']) ?? [] };
  },
});
