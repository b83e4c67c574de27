import { Counter, Gauge, type Registry } from 'prom-client';
import { registerBarbicanFailureSource } from '../barbican/failure-metric.js';
import { emptyReasonCounts } from '../barbican/reasons.js';
import { METRIC_PREFIX } from '../metric-prefix.js';
import type { NovaLogFollower } from './follower.js';

/** At most this many per-instance series (the most recent); the state keeps more. */
const MAX_INSTANCE_SERIES = 64;

/**
 * Metrics of the nova-compute log follower. `collect()` reads the follower's memory only; the
 * follower may be replaced (restart of the extension), hence the getter.
 */
export function registerNovaLogMetrics(registry: Registry, follower: () => NovaLogFollower | null, source: () => string): void {
  registerBarbicanFailureSource(registry, 'log', () => follower()?.incidents.totals ?? emptyReasonCounts());
  new Gauge({
    name: `${METRIC_PREFIX}nova_log_up`,
    help: '1 when the nova-compute log is being followed (file open, journalctl running), 0 when not.',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ source: source() }, follower()?.stats.following ? 1 : 0);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}nova_log_read_bytes_total`,
    help: 'Bytes of nova-compute log read (message bytes for journald).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(follower()?.stats.bytesRead ?? 0);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}nova_log_rotations_total`,
    help: 'Rotations of the followed nova-compute log seen (rename or copytruncate).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(follower()?.stats.rotations ?? 0);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}nova_log_lost_total`,
    help: 'Times nova-compute log lines could not be read (rotated copy gone, journal cursor vacuumed).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(follower()?.stats.lost ?? 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}nova_log_last_read_timestamp_seconds`,
    help: 'When the follower last read new nova-compute log lines (unix seconds).',
    registers: [registry],
    collect() {
      this.reset();
      const at = follower()?.stats.lastReadAt;
      if (at) this.set(at / 1000);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}nova_log_guest_barbican_failure_timestamp_seconds`,
    help: 'Log time of the latest Barbican failure nova-compute logged for a guest, by instance UUID and reason (most recent 64 guests).',
    labelNames: ['instance_uuid', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      const instances = [...(follower()?.incidents.instances() ?? [])].sort((a, b) => b.at - a.at).slice(0, MAX_INSTANCE_SERIES);
      for (const i of instances) this.set({ instance_uuid: i.instanceUuid, reason: i.reason }, i.at / 1000);
    },
  });
}
