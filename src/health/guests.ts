import { GUEST_INVENTORY, isActiveState, type GuestInventory, type SecretMode } from '../guests/types.js';
import type { ProbeResults } from '../results.js';

/** The guest inventory probe's name (src/probes/guest-inventory.ts). */

/** What the per-guest health checks need to know about a vTPM guest. */
export interface HealthGuest {
  name: string;
  uuid: string;
  /** '2.0' or '1.2' (null: libvirt's default, 2.0 on current libvirt). */
  tpmVersion: string | null;
  encryptionSecret: string | null;
  running: boolean;
  /** Managed by Nova (Nova metadata in the domain XML). */
  nova: boolean;
  secretMode: SecretMode;
  /** Whether the libvirt secret exists now; null when unencrypted or unknown. */
  secretPresent: boolean | null;
}

export interface HealthSecret {
  uuid: string;
  usageType: string | null;
  usageName: string | null;
}

export interface GuestsView {
  guests: HealthGuest[];
  /** null when libvirt's secret list could not be read. */
  secrets: HealthSecret[] | null;
  collectedAt: number;
}

export function viewFromInventory(inv: GuestInventory): GuestsView {
  return {
    collectedAt: inv.collectedAt,
    guests: inv.guests.map((g) => ({
      name: g.name,
      uuid: g.uuid,
      tpmVersion: g.tpmVersion,
      encryptionSecret: g.encryptionSecret,
      running: isActiveState(g.state),
      nova: g.nova !== null,
      secretMode: g.secretMode,
      secretPresent: g.secretPresent,
    })),
    secrets: inv.secrets?.map((s) => ({ uuid: s.uuid, usageType: s.usageType, usageName: s.usageName })) ?? null,
  };
}

/** The latest successful inventory, or null when there is none (libvirt down, probe disabled). */
export function guestsFromResults(results: ProbeResults): GuestsView | null {
  const r = results.get(GUEST_INVENTORY);
  if (!r?.ok || !r.data) return null;
  return viewFromInventory(r.data);
}

/** libvirt's layout: `<stateDir>/<uuid>/tpm2/tpm2-00.permall` (TPM 1.2: `tpm1.2/tpm-00.permall`). */
export function guestStatePaths(stateDir: string, guest: Pick<HealthGuest, 'uuid' | 'tpmVersion'>): { uuidDir: string; dir: string; permall: string; lock: string } {
  const v12 = guest.tpmVersion === '1.2';
  const uuidDir = `${stateDir.replace(/\/+$/, '')}/${guest.uuid}`;
  const dir = `${uuidDir}/${v12 ? 'tpm1.2' : 'tpm2'}`;
  return { uuidDir, dir, permall: `${dir}/${v12 ? 'tpm-00.permall' : 'tpm2-00.permall'}`, lock: `${dir}/.lock` };
}
