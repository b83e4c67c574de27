import { Gauge, type Registry } from 'prom-client';
import { gatherNodeIdentity, NODE_IDENTITY, type IdentityValue, type NodeIdentity } from '../identity/identity.js';
import type { CheckSection, ProbeResult } from '../results.js';
import type { Probe } from './types.js';
import { PROCESSES } from '../host/processes.js';
import { METRIC_NAMES } from '../metric-names.js';
import { METRIC_PREFIX } from '../metric-prefix.js';

/**
 * Names this compute node the way Nova and Placement do. On Atmosphere Prometheus's `instance`
 * is the short Kubernetes node name, while Nova knows the node by its FQDN and Placement by the
 * compute node UUID; `vtpm_node_info` joins them. Also reports whether the libvirt container's
 * private paths are reachable, and why not.
 */
export const nodeIdentityProbe: Probe<NodeIdentity> = {
  name: NODE_IDENTITY,
  description: 'Nova host name, compute node UUID, Placement provider name; reachability of the libvirt container paths',
  enabled: (config) => config.identity.enabled,
  schedule: (config) => config.identity.schedule,
  run: async (ctx) =>
    gatherNodeIdentity({
      identity: ctx.config.identity,
      libvirt: ctx.config.libvirt,
      hostPath: ctx.hostPath,
      env: ctx.env,
      signal: ctx.signal,
      remainingMs: () => ctx.remainingMs(),
      processes: await ctx.facts.get(PROCESSES),
    }),
  registerMetrics(registry: Registry, results) {
    new Gauge({
      name: METRIC_NAMES.nodeInfo,
      help: 'Identity of this compute node as Nova and Placement know it (value is always 1); empty label = unknown.',
      labelNames: ['nova_host', 'compute_node_uuid', 'provider_name'],
      registers: [registry],
      collect() {
        this.reset();
        const data = results.get(NODE_IDENTITY)?.data;
        if (!data) return;
        this.set(
          {
            nova_host: data.novaHost.value ?? '',
            compute_node_uuid: data.computeNodeUuid.value ?? '',
            provider_name: data.providerName.value ?? '',
          },
          1,
        );
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}libvirt_container_path_reachable`,
      help: "1 when the agent can read the path as libvirtd sees it (on the host or through /proc/<libvirtd pid>/root), 0 when not; reason says why not (empty when reachable).",
      labelNames: ['path', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of results.get(NODE_IDENTITY)?.data?.containerPaths ?? []) {
          this.set({ path: p.path, reason: p.reachable ? '' : (p.reason ?? '') }, p.reachable ? 1 : 0);
        }
      },
    });
  },
  report(result: ProbeResult<NodeIdentity> | undefined): CheckSection {
    return nodeIdentitySection(result);
  },
};

function show(v: IdentityValue): string {
  return v.value ?? `unknown (${v.error ?? 'no source'})`;
}

export function nodeIdentitySection(result: ProbeResult<NodeIdentity> | undefined): CheckSection {
  if (!result) return { name: NODE_IDENTITY, ok: null, summary: 'not run yet', data: null };
  if (!result.ok || !result.data) {
    return { name: NODE_IDENTITY, ok: false, summary: result.error?.message ?? 'failed', data: { error: result.error ?? null } };
  }
  const d = result.data;
  // A missing compute_id only means nova-compute has not run here; unreadable or garbled is a fault.
  const uuidFault = d.computeNodeUuid.value === null && d.computeNodeUuid.error !== undefined && !/does not exist/.test(d.computeNodeUuid.error);
  const ok = d.novaHost.value !== null && d.providerName.value !== null && !uuidFault;
  const unreachable = d.containerPaths.filter((p) => !p.reachable);
  const where = d.libvirtd ? `libvirtd pid ${d.libvirtd.pid} on the ${d.libvirtd.placement === 'unknown' ? 'unknown side' : d.libvirtd.placement}` : 'libvirtd not visible';
  return {
    name: NODE_IDENTITY,
    ok,
    summary: `nova host ${show(d.novaHost)}; compute node ${d.computeNodeUuid.value ?? 'unknown'}; provider ${d.providerName.value ?? 'unknown'}; ${where}; ${
      unreachable.length ? `unreachable: ${unreachable.map((p) => `${p.path} (${p.reason})`).join(', ')}` : 'libvirt paths reachable'
    }`,
    table: [
      ['fact', 'value', 'source / reason'],
      ['nova host', d.novaHost.value ?? '-', d.novaHost.source ?? d.novaHost.error ?? ''],
      ['compute node uuid', d.computeNodeUuid.value ?? '-', d.computeNodeUuid.source ?? d.computeNodeUuid.error ?? ''],
      ['placement provider', d.providerName.value ?? '-', d.providerName.source ?? d.providerName.error ?? ''],
      ...d.containerPaths.map((p) => [p.path, p.reachable ? (p.resolved ?? '') : 'unreachable', p.reachable ? (p.via ?? '') : `${p.reason}: ${p.detail ?? ''}`]),
    ],
    data: d,
  };
}
