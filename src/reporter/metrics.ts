import { collectDefaultMetrics, Gauge, Counter, Registry } from 'prom-client';
import { verdictFromResults } from '../current-verdict.js';
import type { StateView } from '../results.js';
import { buildInfo } from '../version.js';
import { METRIC_NAMES } from '../metric-names.js';
import { METRIC_PREFIX } from '../metric-prefix.js';

/** Probes' and extensions' own metrics are registered by the agent as each is enabled (agent.ts). */
export interface MetricsSources {
  state: StateView;
  /** Ticks skipped because a probe was still running. */
  skipped?: Map<string, number>;
}

/**
 * Builds the registry. Every gauge computes its value in `collect()` from memory (the state,
 * the verdict, extension status), so a scrape never runs a probe or touches the network.
 */
export function createMetricsRegistry(sources: MetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: `${METRIC_PREFIX}agent_` });
  // prom-client names these gauges `_total`, which Prometheus reserves for counters.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`${METRIC_PREFIX}agent_${name}`);
  }
  const { state } = sources;

  new Gauge({
    name: `${METRIC_PREFIX}agent_build_info`,
    help: 'vtpm-agent build information (value is always 1).',
    labelNames: ['version', 'revision', 'node_version'],
    registers: [registry],
    async collect() {
      const info = await buildInfo();
      this.set({ version: info.version, revision: info.revision, node_version: info.nodeVersion }, 1);
    },
  });
  new Gauge({
    name: METRIC_NAMES.probeSuccess,
    help: 'Whether the latest run of the probe succeeded (1) or failed (0).',
    labelNames: ['probe'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of state.all()) this.set({ probe: r.probe }, r.ok ? 1 : 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}probe_duration_seconds`,
    help: 'Duration of the latest run of the probe.',
    labelNames: ['probe'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of state.all()) this.set({ probe: r.probe }, r.durationSeconds);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}probe_last_success_timestamp_seconds`,
    help: 'Unix time of the latest successful run of the probe.',
    labelNames: ['probe'],
    registers: [registry],
    collect() {
      this.reset();
      for (const r of state.all()) if (r.lastSuccessAt !== null) this.set({ probe: r.probe }, r.lastSuccessAt / 1000);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}probe_skipped_runs_total`,
    help: 'Scheduled runs skipped because the previous run of the probe was still going.',
    labelNames: ['probe'],
    registers: [registry],
    collect() {
      // The scheduler owns the count; expose its absolute value.
      this.reset();
      for (const [probe, count] of sources.skipped ?? []) this.inc({ probe }, count);
    },
  });
  // The verdict is pure but not free: compute it once per state change, not once per gauge.
  let cached: { revision: number; verdict: ReturnType<typeof verdictFromResults> } | undefined;
  const verdict = () => {
    if (cached?.revision !== state.revision) cached = { revision: state.revision, verdict: verdictFromResults(state) };
    return cached.verdict;
  };
  new Gauge({
    name: METRIC_NAMES.capabilityUsable,
    help: 'Whether this host can run a vTPM guest of this TPM version and model (1) or not (0), from all local checks.',
    labelNames: ['version', 'model'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of verdict()?.combinations ?? []) this.set({ version: c.version, model: c.model }, c.usable ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.capabilityReasons,
    help: 'Number of reasons that make this TPM version and model unusable, by stable reason code.',
    labelNames: ['version', 'model', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of verdict()?.combinations ?? []) {
        for (const r of c.reasons) if (r.severity === 'error') this.inc({ version: c.version, model: c.model, reason: r.code });
      }
    },
  });
  new Gauge({
    name: METRIC_NAMES.expectedNovaTrait,
    help: 'COMPUTE_SECURITY_TPM_* traits Nova would report for this host from libvirt domain capabilities (1 = expected).',
    labelNames: ['trait'],
    registers: [registry],
    collect() {
      this.reset();
      const v = verdict();
      if (!v) return;
      for (const trait of ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_SECURITY_TPM_TIS', 'COMPUTE_SECURITY_TPM_CRB']) {
        this.set({ trait }, v.expectedNovaTraits.includes(trait) ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}agent_start_timestamp_seconds`,
    help: 'Unix time the agent started.',
    registers: [registry],
    collect() {
      this.set(state.startedAt / 1000);
    },
  });

  return registry;
}
