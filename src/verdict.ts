/**
 * The capability verdict: which TPM version × model this host can really run, and why not.
 * A pure function of probe results — this is where the rules live.
 */
import type { DomainCapabilities } from './libvirt/domcaps.js';
import type { EmulationOutcome, HostFacts, Reason, ReasonCode, SwtpmFacts, TpmModel, TpmVersion } from './libvirt/facts.js';
import { compareVersions, LIBVIRT_MIN, QEMU_MIN } from './host/versions.js';

/** The combinations Nova and libvirt accept: CRB exists only with TPM 2.0. */
export const TPM_COMBINATIONS: ReadonlyArray<{ version: TpmVersion; model: TpmModel }> = [
  { version: '1.2', model: 'tpm-tis' },
  { version: '2.0', model: 'tpm-tis' },
  { version: '2.0', model: 'tpm-crb' },
];

/** Why a probe the verdict reads did not produce its data (its coded error). */
export interface ProbeFailureCause {
  code: string;
  message: string;
}

export interface VerdictInputs {
  /** Domain capabilities per machine type asked; null when libvirt could not be asked. */
  domcaps: DomainCapabilities | null;
  /** The libvirt probe's failure, cited by the reason that replaces the domain capabilities. */
  libvirtFailure?: ProbeFailureCause;
  swtpm: SwtpmFacts | null;
  /** The swtpm probe's failure, cited when `swtpm` is null. */
  swtpmFailure?: ProbeFailureCause;
  host: HostFacts | null;
  /** Absent when the emulation check is off or has not run yet. */
  emulation?: EmulationOutcome[] | null;
}

export interface CombinationVerdict {
  version: TpmVersion;
  model: TpmModel;
  usable: boolean;
  reasons: Reason[];
}

export interface Verdict {
  combinations: CombinationVerdict[];
  anyUsable: boolean;
  /** COMPUTE_SECURITY_TPM_* Nova (2024.2+, libvirt ≥ 8.0 path) would report for this host. */
  expectedNovaTraits: string[];
  /** Warnings that do not make a combination unusable (e.g. libvirt < 8.9 state-erasure risk). */
  warnings: Reason[];
}

/** Nova's reading of domain capabilities (nova/virt/libvirt/host.py): version list or both. */
function domcapsVersions(domcaps: DomainCapabilities): TpmVersion[] {
  const listed = domcaps.tpm.backendVersions;
  if (listed === null) return ['1.2', '2.0'];
  return listed.filter((v): v is TpmVersion => v === '1.2' || v === '2.0');
}

function domcapsUsable(domcaps: DomainCapabilities): boolean {
  return domcaps.tpm.supported && domcaps.tpm.backendModels.includes('emulator');
}

export function expectedNovaTraits(domcaps: DomainCapabilities | null): string[] {
  if (!domcaps || !domcapsUsable(domcaps)) return [];
  const traits: string[] = [];
  for (const v of domcapsVersions(domcaps)) traits.push(v === '1.2' ? 'COMPUTE_SECURITY_TPM_1_2' : 'COMPUTE_SECURITY_TPM_2_0');
  if (domcaps.tpm.models.includes('tpm-tis')) traits.push('COMPUTE_SECURITY_TPM_TIS');
  if (domcaps.tpm.models.includes('tpm-crb')) traits.push('COMPUTE_SECURITY_TPM_CRB');
  return traits.sort();
}

function err(code: ReasonCode, message: string): Reason {
  return { code, severity: 'error', message };
}

/** Output that could not be used gets its own reason, so "libvirt is down" and "libvirt printed garbage" read apart. */
const OUTPUT_REASONS: Record<'libvirt' | 'swtpm', Partial<Record<string, ReasonCode>>> = {
  libvirt: { VTPM_ERR_PARSE: 'LIBVIRT_OUTPUT_UNPARSABLE', VTPM_ERR_OUTPUT_TOO_LARGE: 'LIBVIRT_OUTPUT_TOO_LARGE' },
  swtpm: { VTPM_ERR_PARSE: 'SWTPM_OUTPUT_UNPARSABLE', VTPM_ERR_OUTPUT_TOO_LARGE: 'SWTPM_OUTPUT_TOO_LARGE' },
};

/** The reason standing in for a probe's missing data, citing the probe's own error code and message. */
function probeFailureReason(probe: 'libvirt' | 'swtpm', fallback: ReasonCode, what: string, failure: ProbeFailureCause | undefined): Reason {
  if (!failure) return err(fallback, what);
  return err(OUTPUT_REASONS[probe][failure.code] ?? fallback, `${what}: the ${probe} probe failed with ${failure.code}: ${failure.message}`);
}

export function computeVerdict(inputs: VerdictInputs): Verdict {
  const common: Reason[] = [];
  const warnings: Reason[] = [...(inputs.host?.warnings ?? [])];
  const { domcaps, swtpm, host } = inputs;

  if (!domcaps) {
    common.push(probeFailureReason('libvirt', 'LIBVIRT_UNAVAILABLE', 'libvirt domain capabilities could not be read', inputs.libvirtFailure));
  } else if (!domcaps.tpm.present) {
    common.push(err('DOMCAPS_NO_TPM', 'libvirt reports no <tpm> in domain capabilities (libvirt < 8.0 or TPM unsupported by this QEMU)'));
  } else {
    if (!domcaps.tpm.supported) common.push(err('DOMCAPS_TPM_UNSUPPORTED', "libvirt reports <tpm supported='no'>"));
    if (!domcaps.tpm.backendModels.includes('emulator')) {
      common.push(err('DOMCAPS_NO_EMULATOR_BACKEND', `libvirt offers no 'emulator' TPM backend (backend models: ${domcaps.tpm.backendModels.join(', ') || 'none'})`));
    }
  }
  if (host?.libvirtVersion && compareVersions(host.libvirtVersion, LIBVIRT_MIN) < 0) {
    common.push(err('LIBVIRT_TOO_OLD', `libvirt ${host.libvirtVersion} is older than Nova's minimum ${LIBVIRT_MIN}`));
  }
  if (host?.qemuVersion && compareVersions(host.qemuVersion, QEMU_MIN) < 0) {
    common.push(err('QEMU_TOO_OLD', `QEMU ${host.qemuVersion} is older than Nova's minimum ${QEMU_MIN}`));
  }
  if (!swtpm) {
    common.push(probeFailureReason('swtpm', 'SWTPM_CAPABILITIES_UNREADABLE', 'swtpm facts are not available (the swtpm probe has not succeeded)', inputs.swtpmFailure));
  } else {
    if (!swtpm.binaries.swtpm) common.push(err('SWTPM_MISSING', 'swtpm is not installed or not on PATH'));
    if (!swtpm.binaries.swtpm_setup) common.push(err('SWTPM_SETUP_MISSING', 'swtpm_setup is not installed or not on PATH'));
    if (!swtpm.binaries.swtpm_ioctl) {
      common.push(err('SWTPM_IOCTL_MISSING', 'swtpm_ioctl is not on PATH (libvirt cannot stop swtpm cleanly; Nova before libvirt 8.0 refuses vTPM)'));
    }
    if (swtpm.binaries.swtpm_setup && swtpm.setupFeatures === null) {
      common.push(err('SWTPM_CAPABILITIES_UNREADABLE', `swtpm_setup --print-capabilities failed: ${swtpm.errors.join('; ') || 'no output'}`));
    }
  }
  if (host) {
    if (!host.swtpmUser.exists) common.push(err('SWTPM_USER_MISSING', `swtpm user '${host.swtpmUser.name}' does not exist`));
    if (!host.swtpmGroup.exists) common.push(err('SWTPM_GROUP_MISSING', `swtpm group '${host.swtpmGroup.name}' does not exist`));
    if (!host.stateDir.exists) common.push(err('SWTPM_STATE_DIR_MISSING', `swtpm state directory ${host.stateDir.path} does not exist`));
  }

  const combinations = TPM_COMBINATIONS.map(({ version, model }): CombinationVerdict => {
    const reasons = [...common];
    if (domcaps?.tpm.present) {
      if (!domcaps.tpm.models.includes(model)) reasons.push(err('DOMCAPS_MODEL_MISSING', `libvirt does not list TPM model ${model}`));
      if (!domcapsVersions(domcaps).includes(version)) {
        reasons.push(err('DOMCAPS_VERSION_MISSING', `libvirt does not list TPM backend version ${version} (swtpm_setup lacks tpm-${version}?)`));
      }
    }
    if (swtpm?.setupFeatures && !swtpm.setupFeatures.includes(`tpm-${version}`)) {
      reasons.push(err('SWTPM_VERSION_UNSUPPORTED', `swtpm_setup does not support tpm-${version}`));
    }
    for (const outcome of inputs.emulation ?? []) {
      if (outcome.version === version && !outcome.ok) {
        reasons.push(
          err('EMULATION_FAILED', `local TPM ${version} emulation check (${outcome.level}) failed${outcome.failedStep ? ` at step '${outcome.failedStep}'` : ''}${outcome.message ? `: ${outcome.message}` : ''}`),
        );
      }
    }
    return { version, model, usable: reasons.every((r) => r.severity !== 'error'), reasons };
  });
  return {
    combinations,
    anyUsable: combinations.some((c) => c.usable),
    expectedNovaTraits: expectedNovaTraits(domcaps),
    warnings,
  };
}
