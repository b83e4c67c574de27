import { Gauge, type Registry } from 'prom-client';
import { readSwtpmCapabilities } from '../host/swtpm-capabilities.js';
import { which } from '../util/which.js';
import { toAgentError } from '../errors.js';
import { SWTPM, type SwtpmFacts } from '../libvirt/facts.js';
import type { Probe, ProbeContext } from './types.js';
import { METRIC_PREFIX } from '../metric-prefix.js';

function capabilities(ctx: ProbeContext, file: string, args: string[], what: string) {
  return readSwtpmCapabilities(file, args, what, { timeoutMs: Math.min(ctx.config.swtpm.timeoutSeconds * 1000, ctx.remainingMs()), signal: ctx.signal, env: ctx.env });
}

/**
 * An answer that is not data (unparsable or past its cap) fails the probe; a binary that refuses
 * (non-zero exit) is a finding the verdict reports as SWTPM_CAPABILITIES_UNREADABLE.
 */
function recordOrFail(facts: SwtpmFacts, err: unknown): void {
  const e = toAgentError(err);
  if (e.code === 'VTPM_ERR_PARSE' || e.code === 'VTPM_ERR_OUTPUT_TOO_LARGE') throw e;
  facts.errors.push(e.message);
}

/** Presence of the swtpm binaries (as libvirt and Nova look them up) and their capabilities. */
export const swtpmProbe: Probe<SwtpmFacts> = {
  name: SWTPM,
  description: 'swtpm, swtpm_setup and swtpm_ioctl on PATH; their --print-capabilities',
  async run(ctx) {
    const { swtpmPath, swtpmSetupPath, swtpmIoctlPath } = ctx.config.swtpm;
    const path = ctx.env.PATH;
    const [swtpm, swtpmSetup, swtpmIoctl] = await Promise.all([which(swtpmPath, path), which(swtpmSetupPath, path), which(swtpmIoctlPath, path)]);
    const facts: SwtpmFacts = {
      binaries: { swtpm, swtpm_setup: swtpmSetup, swtpm_ioctl: swtpmIoctl },
      setupFeatures: null,
      socketFeatures: null,
      version: null,
      errors: [],
    };
    if (swtpm) {
      try {
        const caps = await capabilities(ctx, swtpm, ['socket'], 'swtpm socket');
        facts.socketFeatures = caps.features;
        facts.version = caps.version;
      } catch (err) {
        recordOrFail(facts, err);
      }
    }
    if (swtpmSetup) {
      try {
        const caps = await capabilities(ctx, swtpmSetup, [], 'swtpm_setup');
        facts.setupFeatures = caps.features;
        facts.version ??= caps.version;
      } catch (err) {
        recordOrFail(facts, err);
      }
    }
    return facts;
  },
  registerMetrics(registry: Registry, results) {
    new Gauge({
      name: `${METRIC_PREFIX}swtpm_info`,
      help: 'swtpm version and supported TPM versions from swtpm_setup --print-capabilities (value is always 1).',
      labelNames: ['version', 'tpm_1_2', 'tpm_2_0'],
      registers: [registry],
      collect() {
        this.reset();
        const data = results.get(SWTPM)?.data;
        if (!data) return;
        const f = data.setupFeatures ?? [];
        this.set({ version: data.version ?? '', tpm_1_2: String(f.includes('tpm-1.2')), tpm_2_0: String(f.includes('tpm-2.0')) }, 1);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}swtpm_binary_present`,
      help: '1 when the binary is found on the agent PATH (swtpm, swtpm_setup, swtpm_ioctl).',
      labelNames: ['binary'],
      registers: [registry],
      collect() {
        this.reset();
        const data = results.get(SWTPM)?.data;
        if (!data) return;
        for (const [binary, found] of Object.entries(data.binaries)) this.set({ binary }, found ? 1 : 0);
      },
    });
  },
};
