/**
 * The typed model of vTPM guests, shared by the inventory probe, the restart watcher and the
 * helpers that read `state.get(GUEST_INVENTORY)` (Barbican preflight, host health).
 */
import { probeKey } from '../results.js';

/**
 * Nova's `hw:tpm_secret_security` (2026.1+) for an encrypted vTPM; `none` for a vTPM without
 * encryption (no key to lose, e.g. TPM 1.2 under Nova metadata 1.0); `unknown` when it cannot be told.
 */
export type SecretMode = 'none' | 'user' | 'host' | 'deployment' | 'unknown';

/** Where the secret mode came from: the domain (no encryption), the flavor extra spec, or inferred from libvirt secrets. */
export type SecretModeSource = 'domain' | 'extra-spec' | 'inferred';

/** libvirt domain states as `virsh domstate` prints them, normalised. */
export type DomainState = 'running' | 'blocked' | 'paused' | 'shutdown' | 'shutoff' | 'crashed' | 'pmsuspended' | 'unknown';

export interface NovaMetadata {
  /** Namespace URI version the metadata used: `1.0` or `1.1`. */
  namespaceVersion: string;
  /** The Nova instance UUID is the domain UUID; kept here as Nova's view of it. */
  instanceName: string | null;
  projectId: string | null;
  projectName: string | null;
  userId: string | null;
  flavorName: string | null;
  /** Flavor extra specs, present from Nova 2025.2; empty when Nova did not write them. */
  extraSpecs: Record<string, string>;
}

export interface VtpmGuest {
  /** libvirt domain UUID (= Nova instance UUID for Nova guests). */
  uuid: string;
  /** libvirt domain name (`instance-%08x` for Nova). */
  name: string;
  /** Nova instance UUID: the domain UUID when Nova metadata is present, else null. */
  instanceUuid: string | null;
  tpmVersion: string | null;
  tpmModel: string | null;
  /** `<encryption secret=…>`: the libvirt and Barbican secret UUID; null when unencrypted. */
  encryptionSecret: string | null;
  state: DomainState;
  /** `virsh domstate --reason` reason, e.g. `booted`, `failed`, `destroyed`. */
  stateReason: string | null;
  nova: NovaMetadata | null;
  secretMode: SecretMode;
  secretModeSource: SecretModeSource;
  /** Whether a libvirt secret with the encryption UUID exists right now (null: unencrypted or unknown). */
  secretPresent: boolean | null;
}

/** A domain that could not be read or parsed; reported beside the others, never hiding them. */
export interface DomainError {
  /** UUID or name, whatever identified the domain. */
  domain: string;
  code: string;
  message: string;
}

export interface LibvirtSecret {
  uuid: string;
  usageType: string | null;
  usageName: string | null;
  /** null when the secret's XML could not be read. */
  ephemeral: boolean | null;
  private: boolean | null;
}

export type AtRiskReason = 'user_secret_mode' | 'resume_guests_off' | 'libvirt_state_erasure';

export interface AtRiskGuest {
  uuid: string;
  name: string;
  instanceUuid: string | null;
  reasons: AtRiskReason[];
}

export interface GuestInventory {
  /** Unix ms when collected. */
  collectedAt: number;
  /** Every domain with an emulator TPM, running or defined. */
  guests: VtpmGuest[];
  /** How many libvirt domains were looked at in total (vTPM or not). */
  domainsSeen: number;
  errors: DomainError[];
  /** null when the secret list could not be read (then secret modes may be `unknown`). */
  secrets: LibvirtSecret[] | null;
  libvirtVersion: string | null;
  /** From nova.conf; null when unreadable or not configured. */
  resumeGuestsStateOnHostBoot: boolean | null;
  /** nova.conf exists but could not be read (e.g. `/etc/nova/nova.conf: EACCES`): the flag is not known. */
  novaConfError?: string | null;
  atRisk: AtRiskGuest[];
}

/** Failure reasons for a guest that did not come back after a reboot (metric label values). */
/** The guest-inventory probe's key: `results.get(GUEST_INVENTORY)` is typed. */
export const GUEST_INVENTORY = probeKey<GuestInventory>('guest-inventory');

export type RestartFailureReason = 'secret_missing' | 'user_secret_mode' | 'swtpm_failed' | 'barbican_access' | 'unknown';

export const restartFailureReasons: readonly RestartFailureReason[] = [
  'secret_missing',
  'user_secret_mode',
  'swtpm_failed',
  'barbican_access',
  'unknown',
];

export const atRiskReasons: readonly AtRiskReason[] = ['user_secret_mode', 'resume_guests_off', 'libvirt_state_erasure'];

/** True for states in which Nova's resume-on-boot would bring the guest back (it "was running"). */
export function isActiveState(state: DomainState): boolean {
  return state === 'running' || state === 'blocked' || state === 'paused' || state === 'pmsuspended';
}
