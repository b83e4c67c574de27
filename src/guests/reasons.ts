import type { RestartFailureReason } from './types.js';

/**
 * Lets another capability (the Barbican preflight) explain why a guest failed to restart. The
 * watcher asks every registered source, newest first, when it classifies a failure; the first
 * answer wins over the watcher's own guesses.
 */
export interface RestartReasonSource {
  reasonFor(instanceUuid: string): { reason: RestartFailureReason; detail: string } | undefined;
}

const sources: RestartReasonSource[] = [];

/** Registers a source; returns a function that removes it again. */
export function registerRestartReasonSource(source: RestartReasonSource): () => void {
  sources.unshift(source);
  return () => {
    const i = sources.indexOf(source);
    if (i !== -1) sources.splice(i, 1);
  };
}

export function externalReasonFor(instanceUuid: string): { reason: RestartFailureReason; detail: string } | undefined {
  for (const s of sources) {
    try {
      const r = s.reasonFor(instanceUuid);
      if (r) return r;
    } catch {
      // A broken source must not stop classification; the watcher's own reasons still apply.
    }
  }
  return undefined;
}
