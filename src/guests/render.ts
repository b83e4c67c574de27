import type { CheckSection } from '../results.js';
import type { GuestInventory } from './types.js';

/** The `guest-inventory` section for `vtpm-agent check` and `/status`. */
export function inventorySection(inv: GuestInventory | undefined, error?: { code: string; message: string }): CheckSection {
  if (!inv) {
    return {
      name: 'guest-inventory',
      ok: error ? false : null,
      summary: error ? `vTPM guest inventory failed: ${error.code}: ${error.message}` : 'vTPM guest inventory has not run yet',
      data: error ? { error } : null,
    };
  }
  const risk = new Map(inv.atRisk.map((r) => [r.uuid, r.reasons]));
  const table: string[][] = [['domain', 'instance', 'state', 'tpm', 'secret mode', 'at risk']];
  for (const g of inv.guests) {
    table.push([
      g.name,
      g.instanceUuid ?? '-',
      g.stateReason ? `${g.state} (${g.stateReason})` : g.state,
      `${g.tpmVersion ?? '?'} ${g.tpmModel ?? '?'}${g.encryptionSecret ? ' encrypted' : ''}`,
      `${g.secretMode}${g.secretModeSource === 'inferred' ? '*' : ''}`,
      risk.get(g.uuid)?.join(', ') ?? '-',
    ]);
  }
  const parts = [`${inv.guests.length} vTPM guest(s)`, `${inv.atRisk.length} at risk of not restarting after a host reboot`];
  if (inv.errors.length) parts.push(`${inv.errors.length} domain(s) unreadable`);
  return {
    name: 'guest-inventory',
    ok: inv.atRisk.length === 0 && inv.errors.length === 0,
    summary: parts.join(', '),
    table,
    data: {
      guests: inv.guests,
      atRisk: inv.atRisk,
      errors: inv.errors,
      libvirtVersion: inv.libvirtVersion,
      resumeGuestsStateOnHostBoot: inv.resumeGuestsStateOnHostBoot,
      collectedAt: new Date(inv.collectedAt).toISOString(),
    },
  };
}
