import type { TpmVersion } from '../libvirt/facts.js';
import { probeKey } from '../results.js';
import type { RunAs } from './principal.js';

export type CheckLevel = 'basic' | 'state';

export interface StepTiming {
  name: string;
  durationSeconds: number;
}

/** One emulation check: one TPM version at one level. */
export interface EmulationCheckResult {
  version: TpmVersion;
  level: CheckLevel;
  ok: boolean;
  /** The step that failed, e.g. `spawn`, `init`, `startup`, `nv-read`, `wrong-key`. */
  failedStep: string | null;
  message: string | null;
  /** VTPM_ERR_* code of the failure. */
  errorCode: string | null;
  /** TPM response code (or CMD_INIT result) when the TPM answered with an error. */
  rc: number | null;
  rcName: string | null;
  durationSeconds: number;
  /** From GetCapability: TCG vendor ID (e.g. "IBM") and firmware version. */
  manufacturer: string | null;
  firmwareVersion: string | null;
  /** TPM 2.0: specification revision (e.g. "1.64"); TPM 1.2: spec level. */
  specRevision: string | null;
  steps: StepTiming[];
  /** Unix ms at the start of this check. */
  startedAt: number;
  /** Unix ms of the latest success of this version × level, carried across runs. */
  lastSuccessAt: number | null;
}

export interface EmulationData {
  swtpmPath: string;
  runAs: { mode: RunAs; user: string | null; group: string | null; uid: number | null; gid: number | null };
  tempBase: string;
  checks: EmulationCheckResult[];
}

/** The emulation probe's key: `results.get(EMULATION)` is typed. */
export const EMULATION = probeKey<EmulationData>('emulation');

/** A result that has not (yet) succeeded: the shape every check starts from and every early failure uses. */
export function pendingResult(version: TpmVersion, level: CheckLevel, startedAt: number, steps: StepTiming[] = []): EmulationCheckResult {
  return {
    version,
    level,
    ok: false,
    failedStep: null,
    message: null,
    errorCode: null,
    rc: null,
    rcName: null,
    durationSeconds: 0,
    manufacturer: null,
    firmwareVersion: null,
    specRevision: null,
    steps,
    startedAt,
    lastSuccessAt: null,
  };
}
