/**
 * `vtpm-agent fleet`: the seed's verification for the whole cloud in one command, from any admin
 * host with OpenStack credentials. Reads Placement (one request per trait), Nova flavors, Glance
 * images and, with a Prometheus URL, the agents' verdicts; prints hosts, capacity per TPM version
 * × model and findings. Exit 0 consistent, 1 findings, 2 could not run.
 */
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import { toAgentError } from '../errors.js';
import { describeCloud, openSession } from '../openstack/index.js';
import { auditHosts, auditRequests, capacity, flavorRequest, hostView, imageRequest, requestsTpm, type CapacityRow, type Finding, type HostView, type TpmRequest } from './audit.js';
import { listImages } from './glance.js';
import { listFlavors } from './nova.js';
import { readPlacementInventory } from './placement.js';
import { PrometheusClient, readAgents, type AgentView } from './prometheus.js';

export const FLEET_EXIT = { CONSISTENT: 0, FINDINGS: 1, FAILED: 2 } as const;

export interface FleetOptions {
  config: AgentConfig;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Prometheus that scrapes the agents; null: Placement, flavors and images only. */
  prometheusUrl?: string | null;
  /** Limit of the whole run; each request also has the `openstack.timeoutSeconds` limit. */
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

export interface FleetReport {
  generatedAt: string;
  cloud: Record<string, unknown>;
  placement: { microversion: string; requests: number; providers: number; fencingTrait: string; fencingTraitExists: boolean; knownTraits: string[] };
  prometheus: { url: string; agents: number; up: number } | null;
  nova: { microversion: string; requests: number; flavors: number };
  glance: { requests: number; images: number };
  hosts: HostView[];
  capacity: CapacityRow[];
  /** Flavors and images that ask for a vTPM. */
  requests: TpmRequest[];
  findings: Finding[];
}

export interface FleetFailure {
  /** What could not be read: placement, nova, glance, prometheus, credentials. */
  source: string;
  code: string;
  message: string;
}

export type FleetOutcome = { exitCode: 0 | 1; report: FleetReport; failures: [] } | { exitCode: 2; report: null; failures: FleetFailure[] };

function failed(failures: FleetFailure[]): FleetOutcome {
  return { exitCode: FLEET_EXIT.FAILED, report: null, failures };
}

export async function runFleet(options: FleetOptions): Promise<FleetOutcome> {
  const { config, log } = options;
  const opened = openSession(config.openstack, { env: options.env ?? process.env, log, userAgent: 'vtpm-agent fleet' });
  if (opened.state === 'not-configured') {
    return failed([{ source: 'credentials', code: 'VTPM_ERR_OPENSTACK_NOT_CONFIGURED', message: 'no OpenStack credentials: set OS_CLOUD (clouds.yaml), OS_* variables or openstack.auth in the configuration' }]);
  }
  if (opened.state === 'invalid') return failed([{ source: 'credentials', code: opened.error.code, message: opened.error.message }]);
  const session = opened.session;
  for (const w of session.cloud.warnings) log.warn(w);
  let prometheus: PrometheusClient | null = null;
  if (options.prometheusUrl) {
    try {
      prometheus = new PrometheusClient(options.prometheusUrl, config.openstack.timeoutSeconds * 1000);
    } catch (err) {
      await session.close();
      const e = toAgentError(err, 'VTPM_ERR_PROMETHEUS_QUERY');
      return failed([{ source: 'prometheus', code: e.code, message: e.message }]);
    }
  }
  const deadline = AbortSignal.timeout((options.timeoutSeconds ?? 120) * 1000);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const { fencingTrait, ownedPrefix } = config.placement;
  try {
    const [inventory, nova, glance, agents] = await Promise.allSettled([
      readPlacementInventory(session, { fencingTrait, ownedPrefix, signal }),
      listFlavors(session, signal),
      listImages(session, signal),
      prometheus ? readAgents(prometheus, signal) : Promise.resolve(null),
    ]);
    const failures: FleetFailure[] = [];
    const note = (source: string, r: PromiseSettledResult<unknown>) => {
      if (r.status === 'fulfilled') return;
      const e = toAgentError(r.reason, source === 'prometheus' ? 'VTPM_ERR_PROMETHEUS_QUERY' : 'VTPM_ERR_HTTP');
      const why = deadline.aborted ? ` (the whole run is limited to ${options.timeoutSeconds ?? 120} s)` : '';
      failures.push({ source, code: e.code, message: `${e.message}${why}` });
    };
    note('placement', inventory);
    note('nova', nova);
    note('glance', glance);
    note('prometheus', agents);
    if (inventory.status !== 'fulfilled' || nova.status !== 'fulfilled' || glance.status !== 'fulfilled' || agents.status !== 'fulfilled') return failed(failures);
    const inv = inventory.value;
    const agentViews: AgentView[] | null = agents.value;
    const known = new Set(inv.knownTraits);
    const hosts = inv.providers.map((p) => hostView(p, agentViews, ownedPrefix, known));
    const cap = capacity(hosts);
    const requests = [...nova.value.flavors.map((f) => flavorRequest(f, fencingTrait)), ...glance.value.images.map(imageRequest)].filter(requestsTpm);
    const findings = [
      ...auditRequests(requests, cap, { fencingTrait, fencingEnabled: inv.fencingTraitExists, verdictsAvailable: hosts.some((h) => h.verified !== null) }),
      ...auditHosts(hosts),
    ];
    const report: FleetReport = {
      generatedAt: new Date().toISOString(),
      cloud: describeCloud(session.cloud),
      placement: {
        microversion: inv.microversion,
        requests: inv.requests,
        providers: inv.providers.length,
        fencingTrait,
        fencingTraitExists: inv.fencingTraitExists,
        knownTraits: inv.knownTraits,
      },
      prometheus: prometheus && agentViews ? { url: prometheus.url, agents: agentViews.length, up: agentViews.filter((a) => a.up).length } : null,
      nova: { microversion: nova.value.microversion, requests: nova.value.requests, flavors: nova.value.flavors.length },
      glance: { requests: glance.value.requests, images: glance.value.images.length },
      hosts,
      capacity: cap,
      requests,
      findings,
    };
    return { exitCode: findings.length ? FLEET_EXIT.FINDINGS : FLEET_EXIT.CONSISTENT, report, failures: [] };
  } finally {
    await session.close();
  }
}
