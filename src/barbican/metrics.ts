import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metric-prefix.js';
import { preflightResults } from './client.js';
import { registerBarbicanFailureSource } from './failure-metric.js';
import type { Preflight } from './preflight.js';
import { emptyReasonCounts } from './reasons.js';
import { METRIC_NAMES } from '../metric-names.js';

/** Preflight metrics; `collect()` reads the preflight's memory only. */
export function registerPreflightMetrics(registry: Registry, preflight: () => Preflight | null): void {
  registerBarbicanFailureSource(registry, 'preflight', () => preflight()?.failures ?? emptyReasonCounts());
  new Counter({
    name: `${METRIC_PREFIX}barbican_preflight_checks_total`,
    help: 'Secret checks made by the Barbican preflight, by result (ok, forbidden, not_found, unauthenticated, unavailable).',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const p = preflight();
      for (const r of preflightResults) this.inc({ result: r }, p?.checksByResult[r] ?? 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}barbican_guest_secret_accessible`,
    help: "1 when Nova's identity can read the guest's vTPM secret from Barbican, 0 when not (the guest will not come back after a host reboot); by instance UUID, secret mode and latest result.",
    labelNames: ['instance_uuid', 'secret_mode', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of preflight()?.current() ?? []) this.set({ instance_uuid: c.instanceUuid, secret_mode: c.mode, result: c.result }, c.result === 'ok' ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.barbicanPreflightGuests,
    help: 'vTPM guests whose restart needs Barbican, by latest preflight result.',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const p = preflight();
      if (!p) return;
      const counts = p.countsByResult();
      for (const r of preflightResults) this.set({ result: r }, counts[r]);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}barbican_preflight_last_run_timestamp_seconds`,
    help: 'When the last Barbican preflight round finished (unix seconds).',
    registers: [registry],
    collect() {
      this.reset();
      const at = preflight()?.lastRunAt;
      if (at) this.set(at / 1000);
    },
  });
}
