import { compareVersions, LIBVIRT_KEEP_TPM } from '../host/versions.js';
import { isActiveState, type AtRiskGuest, type AtRiskReason, type LibvirtSecret, type NovaMetadata, type SecretMode, type SecretModeSource, type VtpmGuest } from './types.js';

/** libvirt keeps vTPM state across hard reboot / power-on only from 8.9.0 (VIR_DOMAIN_UNDEFINE_KEEP_TPM). */

const MODES = new Set(['user', 'host', 'deployment']);

/**
 * Secret mode of one guest. A vTPM without encryption has no key to lose: `none`, whatever the
 * flavor says. For an encrypted one: Nova's extra spec when present; otherwise a persistent
 * libvirt secret of usage `vtpm` for this instance means `host` (Nova keeps only those), and
 * without one it is `user` (the key comes from Barbican with the user's token).
 */
export function inferSecretMode(
  guest: { uuid: string; encryptionSecret: string | null; nova: NovaMetadata | null },
  secrets: LibvirtSecret[] | null,
): { mode: SecretMode; source: SecretModeSource } {
  if (guest.encryptionSecret === null) return { mode: 'none', source: 'domain' };
  const spec = guest.nova?.extraSpecs['hw:tpm_secret_security'];
  if (spec !== undefined && MODES.has(spec)) return { mode: spec as SecretMode, source: 'extra-spec' };
  if (secrets === null) return { mode: 'unknown', source: 'inferred' };
  const persistent = secrets.some(
    (s) =>
      s.ephemeral === false &&
      s.usageType === 'vtpm' &&
      (s.usageName === guest.uuid || (guest.encryptionSecret !== null && s.uuid === guest.encryptionSecret)),
  );
  if (persistent) return { mode: 'host', source: 'inferred' };
  return { mode: 'user', source: 'inferred' };
}

export interface RiskContext {
  libvirtVersion: string | null;
  /** null: nova.conf not readable at the configured path, so this risk is not judged. */
  resumeGuestsStateOnHostBoot: boolean | null;
}

/** Why one guest would not come back by itself after a host reboot (empty: it would). */
export function riskReasons(guest: VtpmGuest, ctx: RiskContext): AtRiskReason[] {
  // Only guests that are up now are resumed after a reboot; a stopped one stays stopped anyway.
  if (!isActiveState(guest.state)) return [];
  const reasons: AtRiskReason[] = [];
  if (guest.secretMode === 'user') reasons.push('user_secret_mode');
  if (ctx.resumeGuestsStateOnHostBoot === false) reasons.push('resume_guests_off');
  if (ctx.libvirtVersion !== null && compareVersions(ctx.libvirtVersion, LIBVIRT_KEEP_TPM) < 0) reasons.push('libvirt_state_erasure');
  return reasons;
}

export function atRiskGuests(guests: VtpmGuest[], ctx: RiskContext): AtRiskGuest[] {
  const out: AtRiskGuest[] = [];
  for (const g of guests) {
    const reasons = riskReasons(g, ctx);
    if (reasons.length) out.push({ uuid: g.uuid, name: g.name, instanceUuid: g.instanceUuid, reasons });
  }
  return out;
}
