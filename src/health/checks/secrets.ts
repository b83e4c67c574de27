import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding } from '../types.js';
import type { GuestsView } from '../guests.js';

/**
 * C12: each encrypted vTPM guest needs its libvirt secret when it starts. Nova `host`-mode
 * secrets must persist; `user`-mode ones are removed by Nova right after start (expected absent);
 * plain libvirt guests have nobody to re-create them. `vtpm` secrets of no guest are orphans.
 */
export function evaluateSecrets(view: GuestsView | null): CheckResult {
  // Without the inventory nothing was looked at: unknown (not "not applicable", never pass).
  if (!view) return checkResult('secrets', [finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'unknown', 'The guest inventory is not available (see the guest-inventory probe), so vTPM secrets cannot be checked.')], { note: 'guest inventory unavailable' });
  const findings: Finding[] = [];
  if (view.secrets === null) {
    findings.push(finding('VTPM_HEALTH_SECRETS_UNKNOWN', 'unknown', "libvirt's secret list could not be read; secret presence is unknown."));
  }
  const secretUuids = new Set(view.secrets?.map((s) => s.uuid.toLowerCase()) ?? []);
  for (const g of view.guests) {
    if (!g.encryptionSecret) {
      if (g.nova) findings.push(finding('VTPM_HEALTH_SECRET_UNENCRYPTED_NOVA', 'warn', `Nova guest ${g.name} has an unencrypted vTPM.`, { subject: g.name, details: { uuid: g.uuid } }));
      continue;
    }
    if (view.secrets === null) continue;
    if (secretUuids.has(g.encryptionSecret.toLowerCase())) continue;
    if (g.nova && g.secretMode === 'host') {
      findings.push(
        finding('VTPM_HEALTH_SECRET_MISSING', 'fail', `Guest ${g.name} uses host-mode TPM secret security, but its libvirt secret ${g.encryptionSecret} is missing: it cannot start (or migrate) until Nova re-creates it.`, {
          subject: g.name,
          details: { uuid: g.uuid, secret: g.encryptionSecret, mode: g.secretMode },
        }),
      );
    } else if (!g.nova) {
      findings.push(
        finding('VTPM_HEALTH_SECRET_MISSING', g.running ? 'warn' : 'fail', `Guest ${g.name} encrypts its TPM with libvirt secret ${g.encryptionSecret}, which does not exist: its next start fails with "Secret not found".`, {
          subject: g.name,
          details: { uuid: g.uuid, secret: g.encryptionSecret },
        }),
      );
    }
  }
  if (view.secrets) {
    const guestUuids = new Set(view.guests.map((g) => g.uuid.toLowerCase()));
    const used = new Set(view.guests.map((g) => g.encryptionSecret?.toLowerCase()).filter(Boolean));
    for (const s of view.secrets) {
      if (s.usageType !== 'vtpm') continue;
      if (used.has(s.uuid.toLowerCase()) || (s.usageName && guestUuids.has(s.usageName.toLowerCase()))) continue;
      findings.push(finding('VTPM_HEALTH_SECRET_ORPHANED', 'warn', `libvirt vtpm secret ${s.uuid} (usage "${s.usageName ?? ''}") belongs to no defined guest.`, { subject: s.uuid }));
    }
  }
  return checkResult('secrets', findings, { encryptedGuests: view.guests.filter((g) => g.encryptionSecret).length, vtpmSecrets: view.secrets?.filter((s) => s.usageType === 'vtpm').length ?? null });
}
