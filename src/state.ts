import { EventEmitter } from 'node:events';
import type { ProbeKey, ProbeResult, StateView } from './results.js';

/**
 * The one in-memory store of the latest results. Producers (probes, watchers) write; consumers
 * (reporter, reconciler, CLI) only read. Nothing here does I/O, so /metrics stays cheap.
 */
export class HostState extends EventEmitter implements StateView {
  private readonly results = new Map<string, ProbeResult>();
  private cycles = 0;
  /** Bumped on every write, so consumers can cache what they derive. */
  revision = 0;
  readonly startedAt = Date.now();

  /** Stores a result; returns it as stored (with the last success carried over). */
  set<T>(result: ProbeResult<T>): ProbeResult<T> {
    const previous = this.results.get(result.probe);
    const lastSuccessAt = result.ok ? result.startedAt + result.durationSeconds * 1000 : (previous?.lastSuccessAt ?? null);
    const stored = { ...result, lastSuccessAt };
    this.results.set(result.probe, stored);
    this.revision += 1;
    this.emit('result', stored);
    return stored;
  }

  get<T>(key: ProbeKey<T>): ProbeResult<T> | undefined {
    // The one place a stored result meets its key's type: whoever wrote it ran the probe of that key.
    return this.results.get(key) as ProbeResult<T> | undefined;
  }

  all(): ProbeResult[] {
    return [...this.results.values()];
  }

  completeCycle(): void {
    this.cycles += 1;
    this.emit('cycle', this.cycles);
  }

  get completedCycles(): number {
    return this.cycles;
  }
}
