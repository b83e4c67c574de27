import { Counter, type Registry } from 'prom-client';
import { barbicanReasons, type BarbicanReason, type FailureSource } from './reasons.js';
import { METRIC_NAMES } from '../metric-names.js';

/**
 * `vtpm_barbican_failures_total{source,reason}` is fed by two extensions (the preflight and the
 * nova-compute log follower) that can each be enabled alone. Whichever registers first creates
 * the counter; each adds a reader of its own in-memory totals. `collect()` only calls readers.
 */
export const BARBICAN_FAILURES_METRIC = METRIC_NAMES.barbicanFailures;

type Reader = () => Readonly<Record<BarbicanReason, number>>;

/**
 * The counter keeps its readers itself, so they live in the agent's registry: two agents (two
 * registries) in one process never see each other's sources, and nothing is kept per module.
 */
class BarbicanFailuresCounter extends Counter<'source' | 'reason'> {
  readonly readers: Map<FailureSource, Reader>;

  constructor(registry: Registry) {
    const readers = new Map<FailureSource, Reader>();
    super({
      name: BARBICAN_FAILURES_METRIC,
      help: 'Barbican secret access failures by reason (forbidden, unauthenticated, empty_catalog, not_found, unavailable, other) and where they were seen (preflight: the agent acting as Nova; log: nova-compute).',
      labelNames: ['source', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [source, reader] of readers) {
          const totals = reader();
          for (const reason of barbicanReasons) this.inc({ source, reason }, totals[reason] ?? 0);
        }
      },
    });
    this.readers = readers;
  }
}

export function registerBarbicanFailureSource(registry: Registry, source: FailureSource, read: Reader): void {
  const existing = registry.getSingleMetric(BARBICAN_FAILURES_METRIC);
  if (existing !== undefined && !(existing instanceof BarbicanFailuresCounter)) throw new Error(`${BARBICAN_FAILURES_METRIC} is registered by something else`);
  (existing ?? new BarbicanFailuresCounter(registry)).readers.set(source, read);
}
