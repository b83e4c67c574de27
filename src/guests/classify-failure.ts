import type { RestartFailureReason, VtpmGuest } from './types.js';
import type { FailureContext, TrackedGuest } from './restart-model.js';

export interface FailureEvidence {
  /** From a RestartReasonSource (Barbican preflight). */
  external?: { reason: RestartFailureReason; detail: string } | undefined;
  /** A swtpm failure line logged since the watch began. */
  swtpmLine?: string | null;
}

/**
 * Why a tracked guest did not come back. Order: what another capability knows (Barbican), then
 * evidence of this start (swtpm log, missing libvirt secret), then the secret mode. A guest whose
 * libvirt secret is gone fails with `secret_missing` whether or not a start was tried; for a
 * `user`-mode guest the detail names the cause behind it (Nova had no user token to fetch the key
 * again) and its remedy. `user_secret_mode` is left for a user-mode guest whose secret is there.
 */
export function classifyFailure(tracked: TrackedGuest, current: VtpmGuest, ctx: FailureContext, evidence: FailureEvidence): { reason: RestartFailureReason; detail: string } {
  if (evidence.external) return evidence.external;
  const secret = current.encryptionSecret ?? tracked.encryptionSecret;
  const mode = current.secretMode !== 'unknown' ? current.secretMode : tracked.secretMode;
  const secretMissing = secret !== null && current.secretPresent === false;
  const missingDetail = `libvirt secret ${secret} for the vTPM is not defined (secret mode ${mode})`;
  const userDetail = 'secret mode "user": after a host reboot Nova has no user token to fetch the vTPM key from Barbican; use hw:tpm_secret_security=host or deployment, or grant Nova access (Atmosphere barbican_policy_nova_secret_access)';
  if (ctx.attempted) {
    if (evidence.swtpmLine) return { reason: 'swtpm_failed', detail: `swtpm: ${evidence.swtpmLine}` };
    if (secretMissing) return { reason: 'secret_missing', detail: mode === 'user' ? `${missingDetail}; ${userDetail}` : missingDetail };
    if (mode === 'user') return { reason: 'user_secret_mode', detail: userDetail };
    return { reason: 'unknown', detail: `start failed (state ${current.state}${current.stateReason ? ` (${current.stateReason})` : ''})` };
  }
  if (secretMissing) return { reason: 'secret_missing', detail: mode === 'user' ? `${missingDetail}; ${userDetail}` : missingDetail };
  if (mode === 'user') return { reason: 'user_secret_mode', detail: userDetail };
  if (evidence.swtpmLine) return { reason: 'swtpm_failed', detail: `swtpm: ${evidence.swtpmLine}` };
  return { reason: 'unknown', detail: `still ${current.state}${current.stateReason ? ` (${current.stateReason})` : ''} at the restart deadline` };
}
