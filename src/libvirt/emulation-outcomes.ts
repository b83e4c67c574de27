/** The emulation probe's checks converted into the verdict's input. */
import type { ProbeResult } from '../results.js';
import type { EmulationData } from '../swtpm/types.js';
import type { EmulationOutcome } from './facts.js';

/**
 * The verdict's view of the latest probe result: null when the probe has not run (or is off);
 * when the whole round could not run (aborted, timed out) both versions count as unproven.
 */
export function emulationOutcomesFromResult(result: ProbeResult<EmulationData> | undefined): EmulationOutcome[] | null {
  if (!result) return null;
  if (result.ok && result.data) return emulationOutcomes(result.data);
  const message = `the emulation round did not complete: ${result.error?.message ?? 'unknown error'}`;
  return (['1.2', '2.0'] as const).map((version) => ({ version, level: 'basic' as const, ok: false, failedStep: 'round', message }));
}

/** The verdict's view of the results (`computeVerdict({ emulation })`). */
export function emulationOutcomes(data: EmulationData | null | undefined): EmulationOutcome[] {
  return (data?.checks ?? []).map((c) => ({
    version: c.version,
    level: c.level,
    ok: c.ok,
    ...(c.failedStep ? { failedStep: c.failedStep } : {}),
    ...(c.message ? { message: c.rcName && !c.message.includes(c.rcName) ? `${c.message} (${c.rcName})` : c.message } : {}),
  }));
}
