/**
 * The reconciler's metrics. Every value is read from the reconciler's memory in `collect()`;
 * a scrape never talks to Placement. Labels are bounded: four Nova traits, a fixed state list,
 * the handful of owned trait names, HTTP status codes.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SessionStats } from '../openstack/session.js';
import { METRIC_PREFIX } from '../metric-prefix.js';
import type { ReconcilerCounters, ReconcileResult, ReconcileState } from './reconciler.js';
import { RECONCILE_STATES } from './reconciler.js';
import { NOVA_TPM_TRAITS, TRAIT_STATES, isDrift } from './traits.js';
import { METRIC_NAMES } from '../metric-names.js';

export interface PlacementView {
  state(): ReconcileState;
  /** The latest completed pass (null before the first, or when not configured). */
  result(): ReconcileResult | null;
  /** The latest pass that read the provider: trait metrics stay through a Placement outage. */
  lastRead(): ReconcileResult | null;
  lastSuccessAt(): number | null;
  reconciles(): { success: number; failure: number };
  counters(): ReconcilerCounters | null;
  sessionStats(): SessionStats | null;
  managedTraits(): string[];
  mode(): string;
}

const P = `${METRIC_PREFIX}placement_`;

/** `advertised-not-usable` → `advertised_not_usable`: label values in Prometheus style. */
export const labelOf = (s: string): string => s.replace(/-/g, '_');

export function registerPlacementMetrics(registry: Registry, view: PlacementView): void {
  const registers = [registry];
  new Gauge({
    name: `${P}reconcile_state`,
    help: 'State of the Placement trait reconciler (1 for the current state): consistent, drift, waiting_for_verdict, not_configured, auth_failed, forbidden, unreachable, provider_not_found, conflict, error',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const current = view.state();
      for (const s of RECONCILE_STATES) this.set({ state: labelOf(s) }, s === current ? 1 : 0);
    },
  });
  new Gauge({
    name: `${P}reconcile_success`,
    help: 'Whether the latest reconcile pass reached Placement and read the provider (1) or failed (0); absent before the first pass',
    registers,
    collect() {
      this.reset();
      const r = view.result();
      if (r) this.set(r.error ? 0 : 1);
    },
  });
  new Gauge({
    name: `${P}reconcile_duration_seconds`,
    help: 'Duration of the latest reconcile pass',
    registers,
    collect() {
      this.reset();
      const r = view.result();
      if (r) this.set(r.durationSeconds);
    },
  });
  new Gauge({
    name: `${P}reconcile_last_success_timestamp_seconds`,
    help: 'Unix time of the latest reconcile pass that read the provider successfully',
    registers,
    collect() {
      this.reset();
      const at = view.lastSuccessAt();
      if (at !== null) this.set(at / 1000);
    },
  });
  new Counter({
    name: `${P}reconciles_total`,
    help: 'Reconcile passes, by result (success: the provider was read; failure: Keystone or Placement failed)',
    labelNames: ['result'] as const,
    registers,
    collect() {
      const n = view.reconciles();
      this.reset();
      this.inc({ result: 'success' }, n.success);
      this.inc({ result: 'failure' }, n.failure);
    },
  });
  new Gauge({
    name: `${P}trait_state`,
    help: "Nova vTPM trait on this host's resource provider versus the local checks (1 for the current state): consistent, advertised_not_usable, usable_not_advertised, unknown_to_placement",
    labelNames: ['trait', 'state'] as const,
    registers,
    collect() {
      this.reset();
      const assessment = view.lastRead()?.assessment;
      if (!assessment) return;
      for (const a of assessment) for (const s of TRAIT_STATES) this.set({ trait: a.trait, state: labelOf(s) }, a.state === s ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.placementTraitDrift,
    help: 'Nova vTPM trait drifting from the local checks (1: advertised but not usable, or usable but not advertised); absent until a pass with a verdict',
    labelNames: ['trait'] as const,
    registers,
    collect() {
      this.reset();
      const assessment = view.lastRead()?.assessment;
      if (!assessment) return;
      for (const trait of NOVA_TPM_TRAITS) {
        const a = assessment.find((x) => x.trait === trait);
        if (a) this.set({ trait }, isDrift(a.state) ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: `${P}fence_required`,
    help: 'An advertised vTPM configuration fails the local checks, so the fencing trait should be set (1)',
    registers,
    collect() {
      this.reset();
      const fence = view.lastRead()?.fence;
      if (fence !== null && fence !== undefined) this.set(fence ? 1 : 0);
    },
  });
  new Gauge({
    name: METRIC_NAMES.placementOwnedTraitPresent,
    help: 'Agent-owned trait present on the resource provider (1) or not (0)',
    labelNames: ['trait'] as const,
    registers,
    collect() {
      this.reset();
      const traits = view.lastRead()?.traits;
      if (!traits) return;
      for (const trait of view.managedTraits()) this.set({ trait }, traits.includes(trait) ? 1 : 0);
    },
  });
  new Counter({
    name: `${P}trait_writes_total`,
    help: "Successful writes of the provider's trait set (enforce mode)",
    registers,
    collect() {
      this.reset();
      this.inc(view.counters()?.writes ?? 0);
    },
  });
  new Counter({
    name: `${P}trait_conflicts_total`,
    help: 'Trait writes refused with 409 placement.concurrent_update (another writer changed the provider); each was re-read and retried',
    registers,
    collect() {
      this.reset();
      this.inc(view.counters()?.conflicts ?? 0);
    },
  });
  new Counter({
    name: `${P}api_errors_total`,
    help: 'Failed OpenStack API exchanges of the reconciler, by service (placement, identity) and status (HTTP code, or timeout/unreachable/bad_response)',
    labelNames: ['service', 'status'] as const,
    registers,
    collect() {
      this.reset();
      for (const [key, n] of view.counters()?.apiErrors ?? []) {
        const [service = 'unknown', status = 'unknown'] = key.split(' ');
        this.inc({ service, status: labelOf(status) }, n);
      }
    },
  });
  new Counter({
    name: `${P}auth_failures_total`,
    help: 'Keystone token requests that failed (refused credentials, or Keystone unreachable)',
    registers,
    collect() {
      this.reset();
      this.inc(view.sessionStats()?.authFailures ?? 0);
    },
  });
  new Counter({
    name: `${P}token_requests_total`,
    help: 'Keystone token requests made by the reconciler (tokens are cached until shortly before they expire)',
    registers,
    collect() {
      this.reset();
      this.inc(view.sessionStats()?.tokenRequests ?? 0);
    },
  });
  new Gauge({
    name: `${P}provider_info`,
    help: "This host's resource provider as the reconciler found it, and the reconciler mode",
    labelNames: ['provider_uuid', 'provider_name', 'found_via', 'mode'] as const,
    registers,
    collect() {
      this.reset();
      const p = view.lastRead()?.provider;
      if (p) this.set({ provider_uuid: p.uuid, provider_name: p.name, found_via: p.via, mode: view.mode() }, 1);
    },
  });
}
