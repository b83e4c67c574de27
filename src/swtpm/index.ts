/** Local TPM emulation checks: throwaway swtpm instances driven over the TPM wire protocol. */
export { plannedChecks, runEmulationChecks, type EmulationRunOptions } from './emulation.js';
export { basicTpm12, basicTpm2, stateTpm2, type CheckEnvironment } from './checks.js';
export { runAsPrincipal, type Principal, type RunAs } from './principal.js';
export { rcName, tpm12RcName, tpm2RcName, TpmResponseError } from './rc.js';
export { TpmProtocolError } from './wire.js';
export { EMULATION, type CheckLevel, type EmulationCheckResult, type EmulationData, type StepTiming } from './types.js';
