/**
 * The Placement reconciler as an agent extension: runs on its schedule and whenever the
 * capability verdict changes, backs off exponentially (with jitter) after failures, and never
 * throws out of `start` — Keystone or Placement being down is a state, not a crash.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import type { AgentError } from '../errors.js';
import type { AgentExtension, ExtensionContext } from '../extension-api.js';
import type { CheckSection, ProbeResults } from '../results.js';
import { virshHostname } from '../libvirt/hostname.js';
import { openSession } from '../openstack/index.js';
import { backoffDelay } from '../openstack/backoff.js';
import { describeCloud } from '../openstack/credentials.js';
import type { OpenStackSession } from '../openstack/session.js';
import { hostPathResolver } from '../util/hostpath.js';
import { scheduleIntervalMs, splayIdentity, splayOffsetMs, splayWait } from '../util/splay.js';
import { SerialRunner } from '../util/serial-runner.js';
import type { Verdict } from '../verdict.js';
import { registerPlacementMetrics } from './metrics.js';
import { PlacementReconciler, type ReconcileResult, type ReconcileState } from './reconciler.js';
import { placementSection } from './report.js';
import { isDrift, managedTraitNames } from './traits.js';

/** How often an unchanged drift is logged again (it stays visible in the metrics meanwhile). */
const DRIFT_REMINDER_MS = 6 * 3600 * 1000;

export type VerdictSource = (results: ProbeResults) => Verdict | null;

export interface PlacementExtensionOptions {
  /** The capability verdict from the latest probe results (`verdictFromResults`). */
  verdict: VerdictSource;
  /** libvirt's hostname; default `virsh -r hostname` with the agent's libvirt settings. */
  libvirtHostname?: (config: AgentConfig, env: NodeJS.ProcessEnv, signal?: AbortSignal) => Promise<string | null>;
  random?: () => number;
}

/** What decides whether a verdict change is worth an immediate reconcile. */
function verdictKey(v: Verdict | null): string {
  if (!v) return 'none';
  return JSON.stringify([v.combinations.map((c) => `${c.version}/${c.model}=${c.usable}`), v.expectedNovaTraits]);
}

export class PlacementReconcilerExtension implements AgentExtension {
  readonly name = 'placement';
  private ctx: ExtensionContext | undefined;
  private log: Logger | undefined;
  private session: OpenStackSession | null = null;
  private reconciler: PlacementReconciler | null = null;
  private baseState: ReconcileState = 'not-configured';
  private configError: AgentError | null = null;
  private latest: ReconcileResult | null = null;
  private lastReadResult: ReconcileResult | null = null;
  private lastSuccessAt: number | null = null;
  private readonly counts = { success: 0, failure: 0 };
  private task: ScheduledTask | null = null;
  /** This host's delay after each scheduled tick (splay). */
  splayOffsetMs = 0;
  /** Run now, once more if asked mid-pass, back off on failure. */
  private runner: SerialRunner | null = null;
  private lastVerdictKey: string | null = null;
  private abort = new AbortController();
  private readonly onCycle = () => this.verdictMaybeChanged();
  private readonly random: () => number;
  /** What drifts (null: nothing) and when it was last logged: a warning on change, a rare reminder. */
  private driftKey: string | null = null;
  private driftLoggedAt = 0;
  /** Test hook: called after every pass. */
  onResult: ((r: ReconcileResult) => void) | undefined;

  constructor(private readonly options: PlacementExtensionOptions) {
    this.random = options.random ?? Math.random;
  }

  enabled(config: AgentConfig): boolean {
    return config.placement.enabled;
  }

  private open(ctx: ExtensionContext, log: Logger): { session: OpenStackSession; reconciler: PlacementReconciler } | null {
    const opened = openSession(ctx.config.openstack, { env: ctx.env, log });
    if (opened.state === 'not-configured') {
      this.baseState = 'not-configured';
      return null;
    }
    if (opened.state === 'invalid') {
      this.baseState = 'invalid-config';
      this.configError = opened.error;
      return null;
    }
    for (const warning of opened.session.cloud.warnings) log.warn(warning);
    const hostname = this.options.libvirtHostname ?? virshHostname;
    const reconciler = new PlacementReconciler({
      session: opened.session,
      config: ctx.config.placement,
      hostPath: ctx.hostPath,
      libvirtHostname: () => hostname(ctx.config, ctx.env, ctx.signal),
      log,
      random: this.random,
    });
    return { session: opened.session, reconciler };
  }

  async start(ctx: ExtensionContext): Promise<void> {
    this.ctx = ctx;
    this.abort = new AbortController();
    ctx.signal.addEventListener('abort', () => this.abort.abort(), { once: true });
    const log = ctx.log.child({ extension: this.name });
    this.log = log;
    const opened = this.open(ctx, log);
    if (!opened) {
      if (this.baseState === 'invalid-config') log.error({ err: this.configError?.toJSON() }, 'OpenStack credentials are invalid; the Placement reconciler is idle');
      else log.info('no OpenStack credentials configured; the Placement reconciler is idle');
      return;
    }
    this.session = opened.session;
    this.reconciler = opened.reconciler;
    const retry = { baseMs: ctx.config.placement.retryInitialSeconds * 1000, maxMs: ctx.config.placement.retryMaxSeconds * 1000 };
    this.runner = new SerialRunner({
      run: () => this.runOnce(),
      // After the runner counted the pass, so the hook sees the failure count and next attempt.
      onPass: () => {
        if (this.latest && !this.abort.signal.aborted) this.onResult?.(this.latest);
      },
      retryDelay: (failures) => backoffDelay(retry, failures, this.random),
      onRetry: (failures, delay) => {
        const level = failures === 1 || failures % 10 === 0 ? 'warn' : 'debug';
        this.log?.[level]({ state: this.latest?.state, error: this.latest?.error, failures, retryInMs: delay }, 'Placement reconcile failed; backing off');
      },
    });
    this.baseState = 'waiting-for-verdict';
    log.info({ cloud: describeCloud(opened.session.cloud), mode: ctx.config.placement.mode }, 'Placement reconciler started');
    let offsetMs = 0;
    const task = cron.schedule(
      ctx.config.placement.schedule,
      async () => {
        // This host's splay slot within the interval: a fleet does not reconcile in the same second.
        if (!(await splayWait(offsetMs, this.abort.signal))) return;
        // During a backoff the retry timer owns the next attempt.
        if (!this.runner?.backingOff) this.trigger();
      },
      { name: 'placement-reconcile', noOverlap: true },
    );
    offsetMs = splayOffsetMs(`${splayIdentity(ctx.config.identity)} placement-reconcile`, scheduleIntervalMs(task), ctx.config.splay);
    this.splayOffsetMs = offsetMs;
    this.task = task;
    ctx.state.on('cycle', this.onCycle);
    ctx.state.on('result', this.onCycle);
    this.lastVerdictKey = verdictKey(this.options.verdict(ctx.state));
    this.trigger();
  }

  private verdictMaybeChanged(): void {
    if (!this.ctx || !this.reconciler) return;
    const key = verdictKey(this.options.verdict(this.ctx.state));
    if (key === this.lastVerdictKey) return;
    this.lastVerdictKey = key;
    this.log?.info('capability verdict changed; reconciling now');
    this.trigger();
  }

  /** Runs a pass now, or once more right after the one in flight. */
  trigger(): void {
    if (!this.reconciler || this.abort.signal.aborted) return;
    void this.runner?.trigger();
  }

  /** Resolves when no pass is running (tests and the bench wait on it). */
  async idle(): Promise<void> {
    await this.runner?.idle();
  }

  /** One pass; false (a failure) makes the runner retry with backoff. */
  private async runOnce(): Promise<boolean> {
    const ctx = this.ctx!;
    const reconciler = this.reconciler!;
    const verdict = this.options.verdict(ctx.state);
    this.lastVerdictKey = verdictKey(verdict);
    const result = await reconciler.reconcile(verdict, { signal: this.abort.signal });
    if (this.abort.signal.aborted) return true;
    this.latest = result;
    if (result.error) {
      this.counts.failure += 1;
      return false;
    }
    if (this.failures > 0) this.log?.info({ failures: this.failures }, 'Placement reconcile recovered');
    this.counts.success += 1;
    this.lastSuccessAt = result.at;
    this.lastReadResult = result;
    if (result.wrote) this.log?.info({ plan: result.plan, provider: result.provider }, 'updated agent-owned traits');
    this.logDrift(result);
    return true;
  }

  private get failures(): number {
    return this.runner?.failures ?? 0;
  }

  /**
   * A fenced or drifting host stays so for hours: one warning when the drift begins or changes,
   * one info line when it ends, and a reminder every DRIFT_REMINDER_MS in between, never per pass.
   */
  private logDrift(result: ReconcileResult): void {
    const key =
      result.state === 'drift'
        ? JSON.stringify([result.fence, (result.assessment ?? []).filter((a) => isDrift(a.state)).map((a) => `${a.trait}=${a.state}`)])
        : null;
    if (key !== this.driftKey) {
      if (key !== null) this.log?.warn({ summary: result.summary }, 'vTPM trait drift');
      else if (this.driftKey !== null) this.log?.info({ summary: result.summary }, 'vTPM trait drift cleared');
      this.driftKey = key;
      this.driftLoggedAt = result.at;
    } else if (key !== null && result.at - this.driftLoggedAt >= DRIFT_REMINDER_MS) {
      this.log?.warn({ summary: result.summary }, 'vTPM trait drift continues');
      this.driftLoggedAt = result.at;
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.task) await this.task.destroy();
    this.task = null;
    await this.runner?.stop();
    this.ctx?.state.off('cycle', this.onCycle);
    this.ctx?.state.off('result', this.onCycle);
    // The abort ends any request in flight; wait for the pass to notice.
    await this.idle();
    await this.session?.close();
  }

  state(): ReconcileState {
    return this.latest?.state ?? this.baseState;
  }

  status(): CheckSection {
    return placementSection(this.latest, {
      state: this.state(),
      detail: this.configError?.message ?? (this.reconciler ? 'the first reconcile has not finished yet' : undefined),
      cloud: this.session ? describeCloud(this.session.cloud) : null,
      lastSuccessAt: this.lastSuccessAt,
      nextAttemptAt: this.runner?.nextAttemptAt ?? null,
      consecutiveFailures: this.failures,
    });
  }

  registerMetrics(registry: Registry): void {
    registerPlacementMetrics(registry, {
      state: () => this.state(),
      result: () => this.latest,
      lastRead: () => this.lastReadResult,
      lastSuccessAt: () => this.lastSuccessAt,
      reconciles: () => this.counts,
      counters: () => this.reconciler?.counters ?? null,
      sessionStats: () => this.session?.stats ?? null,
      managedTraits: () => (this.ctx ? managedTraitNames(this.ctx.config.placement, this.latest?.assessment ? this.options.verdict(this.ctx.state) : null) : []),
      mode: () => this.ctx?.config.placement.mode ?? 'observe',
    });
  }

  /** Placement being down must not make the agent unready: its probes still work. */
  readiness(): { ready: boolean; detail?: string } {
    return { ready: true, detail: `placement: ${this.state()}` };
  }

  /** `vtpm-agent check`: one read-only pass (never writes, whatever the mode). */
  async checkOnce(ctx: ExtensionContext): Promise<CheckSection> {
    const r = await runReconcileOnce({
      config: ctx.config,
      log: ctx.log,
      verdict: this.options.verdict(ctx.state),
      dryRun: true,
      env: ctx.env,
      hostPath: ctx.hostPath,
      signal: ctx.signal,
      ...(this.options.libvirtHostname ? { libvirtHostname: this.options.libvirtHostname } : {}),
    });
    return r.section;
  }
}

export interface ReconcileOnceOptions {
  config: AgentConfig;
  log: Logger;
  /** The capability verdict (null: traits are read but not judged). */
  verdict: Verdict | null;
  /** true: compute and show the changes, write nothing (also in enforce mode). */
  dryRun: boolean;
  env?: NodeJS.ProcessEnv;
  hostPath?: (p: string) => string;
  signal?: AbortSignal;
  libvirtHostname?: PlacementExtensionOptions['libvirtHostname'];
}

export interface ReconcileOnceResult {
  section: CheckSection;
  /** null when nothing ran (not configured, invalid credentials). */
  result: ReconcileResult | null;
  /** 0 consistent / waiting, 1 drift, 2 failure or invalid configuration, 3 not configured. */
  exitCode: number;
}

/** `vtpm-agent reconcile --once [--dry-run]`: one pass with a fresh session, then close it. */
export async function runReconcileOnce(options: ReconcileOnceOptions): Promise<ReconcileOnceResult> {
  const env = options.env ?? process.env;
  const log = options.log.child({ extension: 'placement' });
  const opened = openSession(options.config.openstack, { env, log });
  if (opened.state === 'not-configured') return { section: placementSection(null, { state: 'not-configured' }), result: null, exitCode: 3 };
  if (opened.state === 'invalid') {
    return { section: placementSection(null, { state: 'invalid-config', detail: opened.error.message }), result: null, exitCode: 2 };
  }
  const session = opened.session;
  for (const warning of session.cloud.warnings) log.warn(warning);
  const hostname = options.libvirtHostname ?? virshHostname;
  const reconciler = new PlacementReconciler({
    session,
    config: options.config.placement,
    hostPath: options.hostPath ?? hostPathResolver(options.config.hostRoot),
    libvirtHostname: () => hostname(options.config, env, options.signal),
    log,
  });
  try {
    const result = await reconciler.reconcile(options.verdict, { dryRun: options.dryRun, ...(options.signal ? { signal: options.signal } : {}) });
    const section = placementSection(result, {
      state: result.state,
      cloud: describeCloud(session.cloud),
      lastSuccessAt: result.error ? null : result.at,
    });
    const exitCode = result.error ? 2 : result.state === 'drift' ? 1 : 0;
    return { section, result, exitCode };
  } finally {
    await session.close();
  }
}
