/**
 * The `emulation` probe: proves on a schedule that this host can run TPM 1.2 and 2.0 by driving
 * throwaway swtpm instances (src/swtpm). Failed checks are data in a successful probe result;
 * the probe itself fails only when it could not run at all (timeout, abort).
 */
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metric-prefix.js';
import { rcHex } from '../swtpm/rc.js';
import { SWTPM_PRINCIPAL } from '../host/swtpm-principal.js';
import { EMULATION, runEmulationChecks, type EmulationCheckResult, type EmulationData } from '../swtpm/index.js';
import type { CheckSection, ProbeResult, ProbeResults } from '../results.js';
import type { Probe } from './types.js';
import { METRIC_NAMES } from '../metric-names.js';

function latest(results: ProbeResults): EmulationCheckResult[] {
  return results.get(EMULATION)?.data?.checks ?? [];
}

/** Metrics read the latest result only: a scrape never starts swtpm. */
function registerEmulationMetrics(registry: Registry, results: ProbeResults): void {
  new Gauge({
    name: METRIC_NAMES.emulationCheckSuccess,
    help: 'Whether the latest local TPM emulation check passed (1) or failed (0), per TPM version and check level.',
    labelNames: ['version', 'level'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of latest(results)) this.set({ version: c.version, level: c.level }, c.ok ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.emulationCheckDuration,
    help: 'Wall time of the latest local TPM emulation check, per TPM version and check level.',
    labelNames: ['version', 'level'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of latest(results)) this.set({ version: c.version, level: c.level }, c.durationSeconds);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}emulation_check_last_success_timestamp_seconds`,
    help: 'Unix time of the latest passed local TPM emulation check, per TPM version and check level.',
    labelNames: ['version', 'level'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of latest(results)) if (c.lastSuccessAt !== null) this.set({ version: c.version, level: c.level }, c.lastSuccessAt / 1000);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}emulation_check_last_run_timestamp_seconds`,
    help: 'Unix time the latest local TPM emulation check started, per TPM version and check level (staleness).',
    labelNames: ['version', 'level'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of latest(results)) this.set({ version: c.version, level: c.level }, c.startedAt / 1000);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}emulation_check_failure_info`,
    help: 'Present (1) while the latest check of a TPM version and level failed: the failing step and TPM response code name ("none" when the TPM did not answer with one).',
    labelNames: ['version', 'level', 'step', 'rc_name'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of latest(results)) {
        if (c.ok) continue;
        // Both labels come from fixed sets (step names in checks.ts, TPM code names), so cardinality is bounded.
        this.set({ version: c.version, level: c.level, step: c.failedStep ?? 'unknown', rc_name: c.rcName ?? 'none' }, 1);
      }
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}emulation_tpm_info`,
    help: 'Manufacturer and firmware version the emulated TPM reports, per TPM version (value is always 1).',
    labelNames: ['version', 'manufacturer', 'firmware_version'],
    registers: [registry],
    collect() {
      this.reset();
      const seen = new Set<string>();
      for (const c of latest(results)) {
        if (c.manufacturer === null || c.firmwareVersion === null || seen.has(c.version)) continue;
        seen.add(c.version);
        this.set({ version: c.version, manufacturer: c.manufacturer, firmware_version: c.firmwareVersion }, 1);
      }
    },
  });
}

function rcCell(c: EmulationCheckResult): string {
  return c.rc === null ? '-' : `${c.rcName ?? '?'} (${rcHex(c.rc)})`;
}

export function emulationReport(result: ProbeResult<EmulationData> | undefined): CheckSection {
  if (!result) return { name: EMULATION, ok: null, summary: 'emulation checks have not run yet', data: null };
  if (!result.ok || !result.data) {
    return {
      name: EMULATION,
      ok: false,
      summary: `emulation checks could not run: ${result.error?.message ?? 'unknown error'}`,
      data: { error: result.error ?? null },
    };
  }
  const checks = result.data.checks;
  const failed = checks.filter((c) => !c.ok);
  const who = result.data.runAs.user ? `as ${result.data.runAs.user}:${result.data.runAs.group}` : `as uid ${result.data.runAs.uid ?? '?'}`;
  const summary = failed.length
    ? `${failed.length} of ${checks.length} TPM emulation check(s) failed (${who}): ${failed.map((c) => `TPM ${c.version} ${c.level} at '${c.failedStep}'`).join(', ')}`
    : `all ${checks.length} TPM emulation check(s) passed (${who})`;
  const table = [
    ['version', 'level', 'result', 'failed step', 'TPM rc', 'duration', 'manufacturer', 'firmware', 'message'],
    ...checks.map((c) => [
      c.version,
      c.level,
      c.ok ? 'ok' : 'FAILED',
      c.failedStep ?? '-',
      rcCell(c),
      `${Math.round(c.durationSeconds * 1000)} ms`,
      c.manufacturer ?? '-',
      c.firmwareVersion ?? '-',
      c.message ?? '',
    ]),
  ];
  return { name: EMULATION, ok: failed.length === 0, summary, table, data: result.data };
}

export const emulationProbe: Probe<EmulationData> = {
  name: EMULATION,
  description: 'Runs throwaway swtpm instances (TPM 1.2 and 2.0, basic and encrypted-state checks) to prove TPM emulation works',
  schedule: (config) => config.emulation.schedule,
  timeoutMs: (config) => config.emulation.timeoutSeconds * 1000,
  enabled: (config) => config.emulation.enabled,
  async run(ctx, results) {
    return runEmulationChecks({
      config: ctx.config,
      env: ctx.env,
      signal: ctx.signal,
      log: ctx.log,
      swtpmPrincipal: () => ctx.facts.get(SWTPM_PRINCIPAL),
      remainingMs: ctx.remainingMs,
      previous: results.get(EMULATION)?.data ?? null,
    });
  },
  registerMetrics: registerEmulationMetrics,
  report: emulationReport,
};

