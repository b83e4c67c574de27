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
const readersByRegistry = new WeakMap<Registry, Map<FailureSource, Reader>>();

export function registerBarbicanFailureSource(registry: Registry, source: FailureSource, read: Reader): void {
  let readers = readersByRegistry.get(registry);
  if (!readers) {
    readers = new Map();
    readersByRegistry.set(registry, readers);
  }
  readers.set(source, read);
  if (registry.getSingleMetric(BARBICAN_FAILURES_METRIC)) return;
  const sources = readers;
  new Counter({
    name: BARBICAN_FAILURES_METRIC,
    help: 'Barbican secret access failures by reason (forbidden, unauthenticated, empty_catalog, not_found, unavailable, other) and where they were seen (preflight: the agent acting as Nova; log: nova-compute).',
    labelNames: ['source', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [source, reader] of sources) {
        const totals = reader();
        for (const reason of barbicanReasons) this.inc({ source, reason }, totals[reason] ?? 0);
      }
    },
  });
}
