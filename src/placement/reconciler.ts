/**
 * One reconcile pass: read the provider's traits, compare Nova's vTPM traits with the verdict,
 * and (enforce mode) write only the agent-owned traits with the provider generation, re-reading
 * on 409. Caches what rarely changes (microversion, provider UUID, the traits Placement knows)
 * so a steady-state pass is a single GET.
 */
import type { Logger } from 'pino';
import { AgentError, toAgentError } from '../errors.js';
import { backoffDelay, sleep } from '../openstack/backoff.js';
import { OpenStackError } from '../openstack/errors.js';
import type { OpenStackSession } from '../openstack/session.js';
import type { HostPathResolver } from '../util/hostpath.js';
import type { Verdict } from '../verdict.js';
import { PlacementClient, type ProviderTraits } from './client.js';
import type { PlacementConfig } from './config.js';
import { discoverProvider, type ProviderRef } from './provider.js';
import { NOVA_TPM_TRAITS, assessTraits, desiredOwnedTraits, isDrift, planTraits, shouldFence, type TraitAssessment } from './traits.js';

export type ReconcileState =
  | 'not-configured'
  | 'invalid-config'
  | 'waiting-for-verdict'
  | 'consistent'
  | 'drift'
  | 'auth-failed'
  | 'forbidden'
  | 'unreachable'
  | 'provider-not-found'
  | 'conflict'
  | 'error';

export const RECONCILE_STATES: readonly ReconcileState[] = [
  'not-configured',
  'invalid-config',
  'waiting-for-verdict',
  'consistent',
  'drift',
  'auth-failed',
  'forbidden',
  'unreachable',
  'provider-not-found',
  'conflict',
  'error',
];

export interface ReconcileError {
  code: string;
  message: string;
  kind?: string;
  status?: number;
}

export interface ReconcileResult {
  state: ReconcileState;
  /** true: no drift; false: drift or a failure; null: not applicable (not configured, no verdict yet). */
  ok: boolean | null;
  summary: string;
  at: number;
  durationSeconds: number;
  mode: 'observe' | 'enforce';
  dryRun: boolean;
  provider: ProviderRef | null;
  providerNotes: string[];
  microversion: string | null;
  generation: number | null;
  /** The provider's traits after this pass. */
  traits: string[] | null;
  assessment: TraitAssessment[] | null;
  /** Whether the fencing trait should be present (null without a verdict). */
  fence: boolean | null;
  /** Owned-trait changes made (enforce) or that would be made (observe / dry run). */
  plan: { add: string[]; remove: string[] } | null;
  wrote: boolean;
  conflicts: number;
  createdTraits: string[];
  /** HTTP requests this pass made (Keystone included) — the steady-state goal is one. */
  requests: number;
  tokenRequests: number;
  error: ReconcileError | null;
}

export interface ReconcilerDeps {
  session: OpenStackSession;
  config: PlacementConfig;
  hostPath: HostPathResolver;
  libvirtHostname: () => Promise<string | null>;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

export interface ReconcileOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** Cumulative counters for metrics (memory only). */
export interface ReconcilerCounters {
  writes: number;
  conflicts: number;
  createdTraits: number;
  /** `service status` → count of non-2xx answers and failed exchanges. */
  apiErrors: Map<string, number>;
}

export function stateOfError(err: unknown): ReconcileState {
  if (err instanceof OpenStackError) {
    if (err.kind === 'auth') return 'auth-failed';
    if (err.kind === 'forbidden') return 'forbidden';
    if (err.kind === 'unreachable' || err.kind === 'timeout') return 'unreachable';
    return 'error';
  }
  if (err instanceof AgentError) {
    if (err.code === 'VTPM_ERR_PLACEMENT_PROVIDER_NOT_FOUND') return 'provider-not-found';
    if (err.code === 'VTPM_ERR_PLACEMENT_CONFLICT') return 'conflict';
    if (err.code === 'VTPM_ERR_OPENSTACK_CONFIG') return 'invalid-config';
  }
  return 'error';
}

const ERROR_SUMMARY: Partial<Record<ReconcileState, string>> = {
  'auth-failed': 'Keystone refused the credentials',
  forbidden: "the credentials lack the role Placement's trait calls require: admin under Placement's default policy (a service-only token is refused); service only where the deployment's policy grants it",
  unreachable: 'Placement or Keystone is unreachable',
  'provider-not-found': 'no resource provider for this host',
  conflict: 'the provider kept changing concurrently; will retry',
  'invalid-config': 'OpenStack credentials are invalid',
};

export class PlacementReconciler {
  readonly client: PlacementClient;
  readonly counters: ReconcilerCounters = { writes: 0, conflicts: 0, createdTraits: 0, apiErrors: new Map() };
  private provider: { ref: ProviderRef; notes: string[]; at: number } | null = null;
  private known: { traits: Set<string>; at: number } | null = null;
  /** Custom traits known to exist in Placement (created or seen). */
  private readonly createdCustom = new Set<string>();
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly deps: ReconcilerDeps) {
    this.client = new PlacementClient(deps.session);
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    deps.session.onRequest((r) => {
      const ok = /^[23]\d\d$/.test(r.outcome);
      if (!ok) {
        const key = `${r.service} ${r.outcome}`;
        this.counters.apiErrors.set(key, (this.counters.apiErrors.get(key) ?? 0) + 1);
      }
    });
  }

  get session(): OpenStackSession {
    return this.deps.session;
  }

  /** Drops the caches, e.g. when the operator asks for a fresh look. */
  forget(): void {
    this.provider = null;
    this.known = null;
  }

  private fresh(at: number): boolean {
    return this.now() - at < this.deps.config.traitCacheSeconds * 1000;
  }

  private async providerRef(signal: AbortSignal): Promise<{ ref: ProviderRef; notes: string[] }> {
    if (this.provider && this.fresh(this.provider.at)) return this.provider;
    const found = await discoverProvider({
      client: this.client,
      config: this.deps.config,
      hostPath: this.deps.hostPath,
      libvirtHostname: this.deps.libvirtHostname,
      signal,
    });
    this.provider = { ref: found.provider, notes: found.notes, at: this.now() };
    if (this.provider.ref.via === 'name' || found.notes.length) this.deps.log.info({ provider: found.provider, notes: found.notes }, 'found this host\'s resource provider');
    return this.provider;
  }

  private async knownNovaTraits(signal: AbortSignal): Promise<Set<string>> {
    if (this.known && this.fresh(this.known.at)) return this.known.traits;
    const traits = await this.client.knownTraits(NOVA_TPM_TRAITS, signal);
    this.known = { traits, at: this.now() };
    return traits;
  }

  private async readTraits(signal: AbortSignal): Promise<{ ref: ProviderRef; notes: string[]; current: ProviderTraits }> {
    let found = await this.providerRef(signal);
    let current = await this.client.getTraits(found.ref.uuid, signal);
    if (!current) {
      // Deleted or re-created (new UUID): look it up again once.
      this.provider = null;
      found = await this.providerRef(signal);
      current = await this.client.getTraits(found.ref.uuid, signal);
      if (!current) throw new AgentError('VTPM_ERR_PLACEMENT_PROVIDER_NOT_FOUND', `resource provider ${found.ref.uuid} disappeared while reading its traits`);
    }
    return { ...found, current };
  }

  async reconcile(verdict: Verdict | null, options: ReconcileOptions = {}): Promise<ReconcileResult> {
    const cfg = this.deps.config;
    const startedAt = this.now();
    const t0 = performance.now();
    const requestsBefore = this.deps.session.stats.requests;
    const tokensBefore = this.deps.session.stats.tokenRequests;
    const deadline = AbortSignal.timeout(cfg.timeoutSeconds * 1000);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    const dryRun = options.dryRun ?? false;
    const result: ReconcileResult = {
      state: 'error',
      ok: false,
      summary: '',
      at: startedAt,
      durationSeconds: 0,
      mode: cfg.mode,
      dryRun,
      provider: null,
      providerNotes: [],
      microversion: null,
      generation: null,
      traits: null,
      assessment: null,
      fence: null,
      plan: null,
      wrote: false,
      conflicts: 0,
      createdTraits: [],
      requests: 0,
      tokenRequests: 0,
      error: null,
    };
    const finish = (): ReconcileResult => {
      result.durationSeconds = (performance.now() - t0) / 1000;
      result.requests = this.deps.session.stats.requests - requestsBefore;
      result.tokenRequests = this.deps.session.stats.tokenRequests - tokensBefore;
      return result;
    };
    try {
      result.microversion = await this.client.microversion(signal);
      const read = await this.readTraits(signal);
      let current = read.current;
      result.provider = read.ref;
      result.providerNotes = read.notes;
      result.generation = current.generation;
      result.traits = current.traits;
      const known = await this.knownNovaTraits(signal);
      if (!verdict) {
        result.state = 'waiting-for-verdict';
        result.ok = null;
        result.summary = `provider ${read.ref.name}: the local capability checks have not run yet`;
        return finish();
      }
      const evaluate = (traits: string[]) => {
        const set = new Set(traits);
        return {
          assessment: assessTraits(verdict, set, known),
          fence: shouldFence(verdict, set),
          plan: planTraits(traits, desiredOwnedTraits(verdict, set, cfg), cfg.ownedPrefix),
        };
      };
      let e = evaluate(current.traits);
      const mayWrite = cfg.mode === 'enforce' && !dryRun;
      const applied = { add: new Set<string>(), remove: new Set<string>() };
      for (let attempt = 1; mayWrite && e.plan.changed; attempt++) {
        for (const trait of e.plan.add) {
          if (this.createdCustom.has(trait)) continue;
          if (await this.client.ensureCustomTrait(trait, signal)) {
            this.counters.createdTraits += 1;
            result.createdTraits.push(trait);
          }
          this.createdCustom.add(trait);
        }
        const put = await this.client.putTraits(read.ref.uuid, e.plan.next, current.generation, signal);
        if (put.ok) {
          this.counters.writes += 1;
          result.wrote = true;
          e.plan.add.forEach((x) => applied.add.add(x));
          e.plan.remove.forEach((x) => applied.remove.add(x));
          current = put.traits;
          e = evaluate(current.traits);
          break;
        }
        this.counters.conflicts += 1;
        result.conflicts += 1;
        if (attempt >= cfg.maxConflictAttempts) {
          throw new AgentError('VTPM_ERR_PLACEMENT_CONFLICT', `provider ${read.ref.uuid} changed concurrently ${attempt} times in a row (409 placement.concurrent_update)`, {
            details: { attempts: attempt },
          });
        }
        await sleep(backoffDelay({ baseMs: 50, maxMs: 2000 }, attempt, this.random), signal);
        const again = await this.client.getTraits(read.ref.uuid, signal);
        if (!again) throw new AgentError('VTPM_ERR_PLACEMENT_PROVIDER_NOT_FOUND', `resource provider ${read.ref.uuid} disappeared during the update`);
        current = again;
        e = evaluate(current.traits);
      }
      result.generation = current.generation;
      result.traits = current.traits;
      result.assessment = e.assessment;
      result.fence = e.fence;
      result.plan = mayWrite ? { add: [...applied.add].sort(), remove: [...applied.remove].sort() } : { add: e.plan.add, remove: e.plan.remove };
      const drifting = e.assessment.filter((a) => isDrift(a.state));
      const unfenced = e.fence && !current.traits.includes(cfg.fencingTrait);
      result.state = drifting.length || e.fence ? 'drift' : 'consistent';
      result.ok = result.state === 'consistent';
      result.summary = summarise(read.ref, drifting, e.fence, unfenced, cfg, result.plan, mayWrite, dryRun);
      return finish();
    } catch (err) {
      const agentErr = toAgentError(err, 'VTPM_ERR_HTTP');
      result.state = stateOfError(err);
      result.ok = false;
      result.error = {
        code: agentErr.code,
        message: agentErr.message,
        ...(err instanceof OpenStackError ? { kind: err.kind, ...(err.status !== undefined ? { status: err.status } : {}) } : {}),
      };
      result.summary = `${ERROR_SUMMARY[result.state] ?? 'reconcile failed'}: ${agentErr.message}`;
      if (err instanceof OpenStackError && err.kind === 'status' && err.status === 400) this.createdCustom.clear();
      // Roles are fixed in a token: after a 403, authenticate afresh next time so a role granted
      // in the meantime takes effect without restarting the agent.
      if (err instanceof OpenStackError && err.kind === 'forbidden') this.deps.session.invalidateToken();
      return finish();
    }
  }
}

function summarise(
  ref: ProviderRef,
  drifting: TraitAssessment[],
  fence: boolean,
  unfenced: boolean,
  cfg: PlacementConfig,
  plan: { add: string[]; remove: string[] },
  mayWrite: boolean,
  dryRun: boolean,
): string {
  const parts: string[] = [];
  if (drifting.length === 0 && !fence) parts.push('vTPM traits match the local checks');
  for (const d of drifting) {
    parts.push(
      d.state === 'advertised-not-usable'
        ? `${d.trait} advertised but not usable (${d.reasons.join(', ') || 'local checks failed'})`
        : `${d.trait} usable but not advertised${d.expectedByNova ? ' (Nova would report it: nova-compute not refreshed?)' : ''}`,
    );
  }
  if (fence) parts.push(`an advertised vTPM configuration fails the local checks${unfenced ? ` and ${cfg.fencingTrait} is not set` : ''}`);
  const changes = [...plan.add.map((t) => `+${t}`), ...plan.remove.map((t) => `-${t}`)];
  if (changes.length) parts.push(`${mayWrite ? 'wrote' : dryRun && cfg.mode === 'enforce' ? 'would write (dry run)' : 'would write in enforce mode'} ${changes.join(' ')}`);
  return `provider ${ref.name}: ${parts.join('; ')}`;
}
