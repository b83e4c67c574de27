import type { RestartFailureReason } from './types.js';

/**
 * Lets another capability (the Barbican preflight, the nova-compute log) explain why a guest
 * failed to restart. The watcher asks every registered source, newest first, when it classifies
 * a failure; the first answer wins over the watcher's own guesses.
 */
export interface RestartReasonSource {
  reasonFor(instanceUuid: string): { reason: RestartFailureReason; detail: string } | undefined;
}

/** One agent's sources (handed to its extensions in the context; never shared between agents). */
export class RestartReasons {
  private readonly sources: RestartReasonSource[] = [];

  /** Registers a source; returns a function that removes it again. */
  register(source: RestartReasonSource): () => void {
    this.sources.unshift(source);
    return () => {
      const i = this.sources.indexOf(source);
      if (i !== -1) this.sources.splice(i, 1);
    };
  }

  reasonFor(instanceUuid: string): { reason: RestartFailureReason; detail: string } | undefined {
    for (const s of this.sources) {
      try {
        const r = s.reasonFor(instanceUuid);
        if (r) return r;
      } catch {
        // A broken source must not stop classification; the watcher's own reasons still apply.
      }
    }
    return undefined;
  }
}
