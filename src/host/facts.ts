/**
 * Host facts read once per probe round. A fact (the process list, the swtpm principal, nova.conf)
 * is declared once, beside its reader, as `hostFact<T>(name, load)`; probes ask the round's memo
 * (`ctx.facts.get(PROCESSES)`) instead of reading the host themselves, so every probe of a round
 * sees the same answer and the host is read once. The scheduler starts a new memo for each round
 * (one `runCycle`); nothing outlives it.
 */
import type { AgentConfig } from '../config/schema.js';
import type { HostPathResolver } from '../util/hostpath.js';

export interface HostFact<T> {
  readonly name: string;
  /** Reads the fact; it may ask `facts` for the facts it is derived from. */
  readonly load: (facts: HostFacts) => Promise<T>;
}

export function hostFact<T>(name: string, load: (facts: HostFacts) => Promise<T>): HostFact<T> {
  return { name, load };
}

/** What the facts of a round are read with. */
export interface HostFactSource {
  config: AgentConfig;
  hostPath: HostPathResolver;
}

/**
 * One round's facts. Each is loaded on first request and its promise kept, a rejection included:
 * every probe of the round gets the same value or the same failure. Loaders get no abort signal,
 * since the read is shared and one probe's timeout must not fail it for the others.
 */
export class HostFacts {
  private readonly memo = new Map<HostFact<unknown>, Promise<unknown>>();

  constructor(private readonly source: HostFactSource) {}

  get config(): AgentConfig {
    return this.source.config;
  }

  get hostPath(): HostPathResolver {
    return this.source.hostPath;
  }

  get<T>(fact: HostFact<T>): Promise<T> {
    let loaded = this.memo.get(fact) as Promise<T> | undefined;
    if (!loaded) {
      // Through a then so that a loader that throws synchronously is a rejected promise too.
      loaded = Promise.resolve(this).then(fact.load);
      this.memo.set(fact, loaded);
    }
    return loaded;
  }
}
