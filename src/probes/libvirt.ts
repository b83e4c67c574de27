import { access } from 'node:fs/promises';
import { Gauge, type Registry } from 'prom-client';
import { parseDomainCapabilities } from '../libvirt/domcaps.js';
import { LIBVIRT, type LibvirtFacts, type MachineDomainCapabilities } from '../libvirt/facts.js';
import { parseVirshVersion } from '../libvirt/version.js';
import { virsh, type VirshOptions } from '../libvirt/virsh.js';
import { AgentError, toAgentError } from '../errors.js';
import { SMALL_OUTPUT_BYTES } from '../util/exec.js';
import type { Probe, ProbeContext } from './types.js';
import { METRIC_PREFIX } from '../metric-prefix.js';

function options(ctx: ProbeContext, readOnly: boolean): VirshOptions {
  const { libvirt } = ctx.config;
  return {
    virshPath: libvirt.virshPath,
    uri: libvirt.uri,
    readOnly,
    timeoutMs: Math.min(libvirt.timeoutSeconds * 1000, ctx.remainingMs()),
    signal: ctx.signal,
    env: ctx.env,
  };
}

async function detectVirtType(ctx: ProbeContext): Promise<'kvm' | 'qemu'> {
  const configured = ctx.config.libvirt.virtType;
  if (configured !== 'auto') return configured;
  try {
    await access(ctx.hostPath('/dev/kvm'));
    return 'kvm';
  } catch {
    return 'qemu';
  }
}

/**
 * Failures that mean virsh's answer is not data: the probe fails with them rather than record
 * them per machine type. A machine type libvirt itself rejects (a non-zero exit, e.g. an unknown
 * machine type on this arch) stays an answer.
 */
const PROBE_FAILING_CODES: ReadonlySet<string> = new Set(['VTPM_ERR_LIBVIRT_UNAVAILABLE', 'VTPM_ERR_EXEC_NOT_FOUND', 'VTPM_ERR_PARSE', 'VTPM_ERR_OUTPUT_TOO_LARGE', 'VTPM_ERR_EXEC_TIMEOUT', 'VTPM_ERR_EXEC_ABORTED']);

export const libvirtProbe: Probe<LibvirtFacts> = {
  name: LIBVIRT,
  description: 'libvirt and QEMU versions; TPM domain capabilities per machine type',
  async run(ctx) {
    const virtType = await detectVirtType(ctx);
    // Versions through the read-only socket: the agent never needs write access for them.
    const versionOutput = await virsh(['version'], options(ctx, true), SMALL_OUTPUT_BYTES);
    const versions = parseVirshVersion(versionOutput);
    if (versions.libvirt === null) {
      throw new AgentError('VTPM_ERR_PARSE', `virsh version printed no libvirt version ("Using library: libvirt X.Y.Z"): ${JSON.stringify(versionOutput.trim().slice(0, 200))}`, {
        details: { command: 'virsh version' },
      });
    }
    const machines: MachineDomainCapabilities[] = [];
    for (const machineType of ctx.config.libvirt.machineTypes) {
      // domcapabilities is refused on the read-only socket ("read only access prevents
      // virConnectGetDomainCapabilities"), so this one call uses the read-write socket.
      const args = ['domcapabilities', '--virttype', virtType, ...(machineType === 'default' ? [] : ['--machine', machineType])];
      try {
        const xml = await virsh(args, options(ctx, false), ctx.config.libvirt.domcapsMaxBytes);
        try {
          machines.push({ machineType, capabilities: parseDomainCapabilities(xml) });
        } catch (err) {
          const e = toAgentError(err, 'VTPM_ERR_PARSE');
          throw new AgentError(e.code, `virsh ${args.join(' ')}: ${e.message}`, { cause: err, details: { command: `virsh ${args.join(' ')}`, machineType } });
        }
      } catch (err) {
        const e = toAgentError(err);
        if (PROBE_FAILING_CODES.has(e.code)) throw e;
        machines.push({ machineType, capabilities: null, error: e.message });
      }
    }
    // The probe exists for domain capabilities: without any it produced nothing.
    if (!machines.some((m) => m.capabilities)) {
      throw new AgentError('VTPM_ERR_EXEC_FAILED', `libvirt gave domain capabilities for no machine type: ${machines.map((m) => `${m.machineType}: ${m.error}`).join('; ')}`);
    }
    return {
      uri: ctx.config.libvirt.uri,
      virtType,
      libvirtVersion: versions.libvirt,
      hypervisor: versions.hypervisor,
      qemuVersion: versions.hypervisor === 'QEMU' ? versions.hypervisorVersion : null,
      machines,
    };
  },
  registerMetrics(registry: Registry, results) {
    new Gauge({
      name: `${METRIC_PREFIX}libvirt_info`,
      help: 'libvirt and QEMU versions seen by the agent (value is always 1).',
      labelNames: ['libvirt_version', 'qemu_version', 'virt_type'],
      registers: [registry],
      collect() {
        this.reset();
        const data = results.get(LIBVIRT)?.data;
        if (data) this.set({ libvirt_version: data.libvirtVersion ?? '', qemu_version: data.qemuVersion ?? '', virt_type: data.virtType }, 1);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}libvirt_domcaps_tpm_supported`,
      help: "1 when libvirt's domain capabilities report <tpm supported='yes'> with an emulator backend, per machine type.",
      labelNames: ['machine_type'],
      registers: [registry],
      collect() {
        this.reset();
        for (const m of results.get(LIBVIRT)?.data?.machines ?? []) {
          const tpm = m.capabilities?.tpm;
          this.set({ machine_type: m.machineType }, tpm?.supported && tpm.backendModels.includes('emulator') ? 1 : 0);
        }
      },
    });
  },
};
