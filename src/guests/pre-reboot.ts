/**
 * `vtpm-agent check --pre-reboot`: may this host be rebooted without stranding vTPM guests?
 * Reuses the inventory's at-risk classification (atRiskGuests); adds the wording a maintenance
 * playbook prints and the rule that "could not tell" is never "safe".
 */
import { isActiveState, type AtRiskReason, type DomainError, type GuestInventory } from './types.js';

/** safe: nothing at risk; at_risk: guests would not come back; unknown: the answer is incomplete. */
export type PreRebootOutcome = 'safe' | 'at_risk' | 'unknown';

export const PRE_REBOOT_EXIT: Readonly<Record<PreRebootOutcome, number>> = { safe: 0, at_risk: 1, unknown: 2 };

/** What each reason means for the guest after the reboot, and what to do before it. */
export const AT_RISK_EXPLANATION: Readonly<Record<AtRiskReason, string>> = {
  user_secret_mode:
    'hw:tpm_secret_security=user: after a host reboot Nova has no user token to fetch the vTPM key from Barbican; move the guest first, or use a host/deployment secret flavor',
  resume_guests_off: 'nova.conf resume_guests_state_on_host_boot is false: Nova will not start the guest again; set it to true or start guests by hand',
  libvirt_state_erasure: 'libvirt older than 8.9 may erase the vTPM state on restart: upgrade libvirt before rebooting',
};

export interface PreRebootGuest {
  name: string;
  uuid: string;
  instanceUuid: string | null;
  project: string | null;
  flavor: string | null;
  reasons: AtRiskReason[];
  why: string[];
}

export interface PreRebootReport {
  outcome: PreRebootOutcome;
  summary: string;
  guests: PreRebootGuest[];
  /** Domains that could not be read: they might be at risk, so the outcome is `unknown`. */
  unreadable: DomainError[];
  /** When the inventory itself failed (libvirt unreachable, …). */
  error: { code: string; message: string } | null;
  checkedAt: string;
}

export function preRebootReport(inv: GuestInventory): PreRebootReport {
  const byUuid = new Map(inv.guests.map((g) => [g.uuid, g]));
  const guests = inv.atRisk.map((r): PreRebootGuest => {
    const g = byUuid.get(r.uuid);
    return {
      name: r.name,
      uuid: r.uuid,
      instanceUuid: r.instanceUuid,
      project: g?.nova?.projectName ?? g?.nova?.projectId ?? null,
      flavor: g?.nova?.flavorName ?? null,
      reasons: r.reasons,
      why: r.reasons.map((reason) => AT_RISK_EXPLANATION[reason]),
    };
  });
  const undetermined = undeterminedInputs(inv);
  const outcome: PreRebootOutcome = guests.length ? 'at_risk' : inv.errors.length || undetermined.length ? 'unknown' : 'safe';
  const summary =
    outcome === 'at_risk'
      ? `do not reboot: ${guests.length} vTPM guest(s) would not come back after a host reboot`
      : outcome === 'unknown'
        ? `cannot tell: ${[inv.errors.length ? `${inv.errors.length} libvirt domain(s) could not be read` : '', ...undetermined].filter(Boolean).join('; ')}`
        : `safe to reboot: none of the ${inv.guests.length} vTPM guest(s) is at risk`;
  return { outcome, summary, guests, unreadable: inv.errors, error: null, checkedAt: new Date(inv.collectedAt).toISOString() };
}

/** What the inventory could not see that a "safe" answer would rely on (never safe then). */
function undeterminedInputs(inv: GuestInventory): string[] {
  const out: string[] = [];
  if (inv.secrets === null) out.push("libvirt's secret list could not be read");
  // Without the flag the resume_guests_off risk cannot be ruled out.
  if (inv.novaConfError) out.push(`nova.conf could not be read (${inv.novaConfError})`);
  const unknownState = inv.guests.filter((g) => g.state === 'unknown').length;
  if (unknownState) out.push(`${unknownState} guest(s) in an unknown state`);
  const unknownMode = inv.guests.filter((g) => isActiveState(g.state) && g.secretMode === 'unknown').length;
  if (unknownMode) out.push(`${unknownMode} running guest(s) whose vTPM secret mode is unknown`);
  return out;
}

/** The report when no inventory could be taken at all. */
export function preRebootFailure(code: string, message: string, now = Date.now()): PreRebootReport {
  return { outcome: 'unknown', summary: `cannot tell: the vTPM guest inventory failed: ${code}: ${message}`, guests: [], unreadable: [], error: { code, message }, checkedAt: new Date(now).toISOString() };
}

export function renderPreReboot(r: PreRebootReport): string {
  const lines = [`pre-reboot: ${r.summary}`];
  for (const g of r.guests) {
    const who = [g.instanceUuid ? `instance ${g.instanceUuid}` : `uuid ${g.uuid}`, g.project && `project ${g.project}`, g.flavor && `flavor ${g.flavor}`].filter(Boolean).join(', ');
    lines.push(`  ${g.name} (${who}): ${g.reasons.join(', ')}`);
    for (const why of g.why) lines.push(`    - ${why}`);
  }
  for (const e of r.unreadable) lines.push(`  unreadable domain ${e.domain}: ${e.code}: ${e.message}`);
  return lines.join('\n');
}
