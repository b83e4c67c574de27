import type { AgentConfig } from '../config/schema.js';
import type { Probe, ProbeContext } from '../probes/types.js';
import { probeKey, type ProbeResults } from '../results.js';
import type { HealthCheckToggle } from './config.js';
import { healthSection } from './report.js';
import type { HealthProbeData } from './types.js';

export interface HealthProbeDefinition<T extends HealthProbeData> {
  name: string;
  title: string;
  description: string;
  /** The config toggles of the checks this probe runs; it is off when all of them are. */
  toggles: readonly HealthCheckToggle[];
  after?: readonly string[];
  run(ctx: ProbeContext, results: ProbeResults): Promise<T>;
}

/** Wraps one group of health checks as a probe: shared schedule, timeout, toggles and report (metrics: see index.ts). */
export function healthProbe<T extends HealthProbeData>(def: HealthProbeDefinition<T>): Probe<T> {
  return {
    name: probeKey<T>(def.name),
    description: def.description,
    ...(def.after ? { after: def.after } : {}),
    schedule: (config: AgentConfig) => config.health.schedule,
    timeoutMs: (config: AgentConfig) => config.health.timeoutSeconds * 1000,
    enabled: (config: AgentConfig) => config.health.enabled && def.toggles.some((t) => config.health.checks[t]),
    run: (ctx, results) => def.run(ctx, results),
    report: (result) => healthSection(def.title, result),
  };
}

/** Inner command timeout: the swtpm timeout, bounded by what is left of the probe's budget. */
export function innerTimeout(ctx: ProbeContext): number {
  return Math.max(1, Math.min(ctx.config.swtpm.timeoutSeconds * 1000, ctx.remainingMs()));
}
