import type { HealthCheckToggle } from './config.js';

/**
 * The shape every host health check reports in: a check (one row of the failure-modes checklist)
 * holds findings; each finding has a stable reason code, a sentence for operators and a remedy.
 */

/** `unknown`: the agent could not read what the check needs (EACCES, a missing /proc view); never `pass`. */
export type CheckStatus = 'pass' | 'unknown' | 'warn' | 'fail' | 'not-applicable';

/** Stable check names (metric label values; bounded). The checklist number is in `CHECKS`. */
export type CheckId =
  | 'binaries'
  | 'capabilities'
  | 'principal'
  | 'localca'
  | 'guest-state'
  | 'orphans'
  | 'apparmor'
  | 'selinux'
  | 'crypto'
  | 'logs'
  | 'tpm-reset'
  | 'nova-config'
  | 'secrets'
  | 'versions'
  | 'container';

/** Checklist numbers from docs/failure-modes §2, for operators cross-referencing. */
export const CHECKS: Record<CheckId, { ref: string; title: string }> = {
  binaries: { ref: 'C1', title: 'swtpm binaries on libvirt PATH' },
  capabilities: { ref: 'C2', title: 'swtpm capabilities for encrypted vTPM' },
  principal: { ref: 'C3', title: 'swtpm principal (libvirt vs Nova)' },
  localca: { ref: 'C4', title: 'swtpm local CA usable by the swtpm principal' },
  'guest-state': { ref: 'C5', title: 'per-guest TPM state' },
  orphans: { ref: 'C6', title: 'orphaned swtpm processes, pid and socket files' },
  apparmor: { ref: 'C7', title: 'AppArmor profile and denials for swtpm' },
  selinux: { ref: 'C8', title: 'SELinux mode, labels, modules and AVCs for swtpm' },
  crypto: { ref: 'C9', title: 'FIPS and crypto policy' },
  logs: { ref: 'C10', title: 'swtpm and QEMU log failures per guest' },
  'tpm-reset': { ref: 'C10', title: 'TPM re-created for a guest that had one' },
  'nova-config': { ref: 'C11', title: 'Nova vTPM configuration consistency' },
  secrets: { ref: 'C12', title: 'vTPM encryption secrets in libvirt' },
  versions: { ref: 'C13', title: 'libvirt, QEMU, swtpm and libtpms versions' },
  container: { ref: 'C14', title: 'containerised libvirt capabilities and mounts' },
};

export const CHECK_IDS = Object.keys(CHECKS) as CheckId[];

export interface Finding {
  /** Stable reason code, `VTPM_HEALTH_*`; see reasons.ts. */
  reason: string;
  status: CheckStatus;
  /** One sentence for operators, naming the path, user or guest concerned. */
  message: string;
  remedy: string;
  /** Guest name, file or process the finding is about. */
  subject?: string;
  details?: Record<string, unknown>;
}

export interface CheckResult {
  check: CheckId;
  status: CheckStatus;
  /** Non-passing findings (and at most a few informative passing ones). */
  findings: Finding[];
  /** Facts the check established (effective principal, paths, versions...), for --json and /status. */
  facts?: Record<string, unknown>;
}

const rank: Record<CheckStatus, number> = { 'not-applicable': 0, pass: 1, unknown: 2, warn: 3, fail: 4 };

/** The worst status wins; a check with no findings passes. */
export function worst(statuses: Iterable<CheckStatus>, empty: CheckStatus = 'pass'): CheckStatus {
  let out: CheckStatus | null = null;
  for (const s of statuses) if (out === null || rank[s] > rank[out]) out = s;
  return out ?? empty;
}

export function checkResult(check: CheckId, findings: Finding[], facts?: Record<string, unknown>, empty: CheckStatus = 'pass'): CheckResult {
  return { check, status: worst(findings.map((f) => f.status), empty), findings, ...(facts ? { facts } : {}) };
}

/** What every health probe returns: its checks (only the enabled ones). */
export interface HealthProbeData {
  checks: CheckResult[];
}

/** The config toggles are the check ids: a check added to one and not the other fails to compile. */
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const togglesAreCheckIds: SameKeys<HealthCheckToggle, CheckId> = true;
void togglesAreCheckIds;
