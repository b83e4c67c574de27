import type { CheckSection } from '../results.js';
import type { GuestInventory } from './types.js';
import type { Watch } from './restart-model.js';

export interface RestartReportInput {
  bootId: string | null;
  watch: Watch | null;
  inventory: GuestInventory | null;
  error: string | null;
  /** false in `check`: a reboot found there is only reported, not followed. */
  watching: boolean;
}

/** `guest-restarts` section: the last reboot's outcome per guest, and who is at risk now. */
export function restartSection(input: RestartReportInput): CheckSection {
  const { watch, inventory, error } = input;
  const current = watch && input.bootId !== null && watch.bootId === input.bootId ? watch : null;
  const counts = { pending: 0, restarted: 0, failed: 0, gone: 0 };
  for (const g of current?.guests ?? []) counts[g.status] += 1;
  const down = current?.guests.filter((g) => g.status === 'failed' && g.down) ?? [];
  const atRisk = inventory?.atRisk ?? [];
  const table: string[][] = [['domain', 'instance', 'after last reboot', 'reason / at risk because']];
  for (const g of current?.guests ?? []) {
    const outcome = g.status === 'restarted' ? `restarted in ${g.timeToRestartSeconds?.toFixed(1)} s` : g.status === 'failed' ? (g.down ? 'FAILED, still down' : 'failed, since recovered') : g.status;
    table.push([g.name, g.instanceUuid ?? g.uuid, outcome, g.status === 'failed' ? `${g.reason}: ${g.detail}` : '-']);
  }
  for (const r of atRisk) table.push([r.name, r.instanceUuid ?? r.uuid, 'AT RISK', r.reasons.join(', ')]);
  const parts: string[] = [];
  if (current) {
    parts.push(`after the reboot (boot ${current.bootId.slice(0, 8)}): ${counts.restarted} restarted, ${counts.failed} failed (${down.length} still down), ${counts.pending} pending, ${counts.gone} gone`);
    if (!input.watching && counts.pending > 0) parts.push('the restart watcher is not running here; `serve` follows them');
  } else {
    parts.push('no host reboot with vTPM guests to follow since the last snapshot');
  }
  parts.push(`${atRisk.length} vTPM guest(s) at risk of not restarting after the next reboot`);
  if (error) parts.push(`error: ${error}`);
  return {
    name: 'guest-restarts',
    ok: error === null && down.length === 0 && !(current !== null && counts.pending > 0 && Date.now() > current.deadlineAt) && atRisk.length === 0,
    summary: parts.join('; '),
    table: table.length > 1 ? table : undefined,
    data: {
      bootId: input.bootId,
      lastReboot: current
        ? {
            previousBootId: current.previousBootId,
            startedAt: new Date(current.startedAt).toISOString(),
            deadlineAt: new Date(current.deadlineAt).toISOString(),
            counts,
            guests: current.guests,
          }
        : null,
      atRisk,
      error,
    },
  };
}
