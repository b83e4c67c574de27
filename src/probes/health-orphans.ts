import { checkOrphans } from '../health/checks/orphans.js';
import { GUEST_INVENTORY } from '../guests/types.js';
import { guestsFromResults } from '../health/guests.js';
import type { OrphansProbeData } from '../health/metrics.js';
import { HEALTH_PROBE_NAMES } from '../health/names.js';
import { healthProbe } from '../health/probe.js';
import { listProcesses } from '../health/proc-read.js';
import { finding } from '../health/reasons.js';
import { checkResult } from '../health/types.js';

/** C6: swtpm processes and state-lock holders without a running guest; stale pid and socket files. */
export const healthOrphansProbe = healthProbe<OrphansProbeData>({
  name: HEALTH_PROBE_NAMES.orphans,
  title: 'Health: orphaned swtpm',
  description: 'swtpm processes and /proc/locks holders on TPM state of guests that are not running; stale *-swtpm.pid/.sock',
  toggles: ['orphans'],
  after: [GUEST_INVENTORY],
  async run(ctx, results) {
    const view = guestsFromResults(results);
    if (!view) {
      // Without the guest list every swtpm would look orphaned: report the gap instead.
      return { checks: [checkResult('orphans', [finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'warn', 'The guest inventory is not available, so orphaned swtpm processes cannot be told apart.')])], counts: null };
    }
    const out = await checkOrphans({
      guests: view.guests,
      stateDir: ctx.config.swtpm.stateDir,
      runDir: ctx.config.health.swtpmRunDir,
      processes: await listProcesses(ctx.hostPath),
      hostPath: ctx.hostPath,
    });
    const { counts, ...check } = out;
    return { checks: [check], counts };
  },
});
