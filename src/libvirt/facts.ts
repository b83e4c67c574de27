/**
 * The verdict's inputs: what the libvirt, swtpm, host and emulation probes found, as typed facts
 * with their probe keys. Lives below the probes and the verdict so both can import it.
 */
import type { HostMemory } from '../host/memory.js';
import type { DomainCapabilities } from './domcaps.js';
import { probeKey } from '../results.js';

export type TpmVersion = '1.2' | '2.0';
export type TpmModel = 'tpm-tis' | 'tpm-crb';

/** Stable reason codes: alerts, dashboards and scripts match on these, so never rename one. */
export type ReasonCode =
  | 'LIBVIRT_UNAVAILABLE'
  | 'LIBVIRT_OUTPUT_UNPARSABLE'
  | 'LIBVIRT_OUTPUT_TOO_LARGE'
  | 'LIBVIRT_TOO_OLD'
  | 'LIBVIRT_TPM_STATE_ERASURE_RISK'
  | 'KVM_MISSING'
  | 'QEMU_TOO_OLD'
  | 'DOMCAPS_NO_TPM'
  | 'DOMCAPS_TPM_UNSUPPORTED'
  | 'DOMCAPS_NO_EMULATOR_BACKEND'
  | 'DOMCAPS_MODEL_MISSING'
  | 'DOMCAPS_VERSION_MISSING'
  | 'SWTPM_MISSING'
  | 'SWTPM_SETUP_MISSING'
  | 'SWTPM_IOCTL_MISSING'
  | 'SWTPM_VERSION_UNSUPPORTED'
  | 'SWTPM_CAPABILITIES_UNREADABLE'
  | 'SWTPM_OUTPUT_UNPARSABLE'
  | 'SWTPM_OUTPUT_TOO_LARGE'
  | 'SWTPM_USER_MISSING'
  | 'SWTPM_GROUP_MISSING'
  | 'SWTPM_STATE_DIR_MISSING'
  | 'SWTPM_STATE_DIR_PERMISSIONS'
  | 'SWTPM_PRINCIPAL_ASSUMED'
  | 'EMULATION_FAILED'
  | 'EMULATION_NOT_RUN';

export type Severity = 'error' | 'warning';

export interface Reason {
  code: ReasonCode;
  severity: Severity;
  message: string;
}

/** What the swtpm probe found. */
export interface SwtpmFacts {
  binaries: { swtpm: string | null; swtpm_setup: string | null; swtpm_ioctl: string | null };
  /** Features from `swtpm_setup --print-capabilities` (libvirt takes TPM versions from there). */
  setupFeatures: string[] | null;
  socketFeatures: string[] | null;
  version: string | null;
  errors: string[];
}

/** What the host-prerequisites probe found. */
export interface HostFacts {
  swtpmUser: { name: string; exists: boolean; uid: number | null };
  swtpmGroup: { name: string; exists: boolean; gid: number | null };
  stateDir: { path: string; exists: boolean; owner: string | null; mode: string | null; problems: string[] };
  kvm: boolean;
  libvirtVersion: string | null;
  qemuVersion: string | null;
  warnings: Reason[];
}

/** One local emulation result per TPM version and check level (filled in by src/swtpm). */
export interface EmulationOutcome {
  version: TpmVersion;
  level: 'basic' | 'state';
  ok: boolean;
  /** The step that failed, e.g. `startup`, `selftest`, `nv-read`. */
  failedStep?: string;
  message?: string;
}

export interface HostPrerequisites extends HostFacts {
  bootTime: number | null;
  os: string | null;
  kernel: string | null;
  hardwareVirtualization: boolean | null;
  memory: HostMemory | null;
}

export interface MachineDomainCapabilities {
  /** `default` = libvirt's default machine type for the arch. */
  machineType: string;
  capabilities: DomainCapabilities | null;
  error?: string;
}

export interface LibvirtFacts {
  uri: string;
  virtType: 'kvm' | 'qemu';
  libvirtVersion: string | null;
  hypervisor: string | null;
  qemuVersion: string | null;
  machines: MachineDomainCapabilities[];
}

/** The first machine type that answered: Nova reads the host arch's first machine type. */
export function primaryDomainCapabilities(facts: LibvirtFacts | undefined): DomainCapabilities | null {
  return facts?.machines.find((m) => m.capabilities)?.capabilities ?? null;
}

/** Probe keys: `results.get(LIBVIRT)` is typed. */
export const LIBVIRT = probeKey<LibvirtFacts>('libvirt');
export const SWTPM = probeKey<SwtpmFacts>('swtpm');
export const HOST = probeKey<HostPrerequisites>('host');
