import path from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import { toAgentError } from '../errors.js';
import { SerialRunner } from '../util/serial-runner.js';
import type { AgentExtension, ExtensionContext } from '../extension-api.js';
import type { CheckSection, ProbeResult } from '../results.js';
import { GUEST_INVENTORY } from '../guests/types.js';
import { openSession, type OpenStackSession } from '../openstack/index.js';
import { checkSecret } from './client.js';
import { registerPreflightMetrics } from './metrics.js';
import { Preflight, preflightTargets, preflightTotalsSchema, type PreflightTotals } from './preflight.js';
import type { StateFile } from '../util/state-file.js';
import { delayToNextSlotMs, splayIdentity, splayOffsetMs } from '../util/splay.js';

/**
 * Barbican secret access preflight: as Nova's identity, checks that every vTPM guest whose
 * restart needs Barbican has a readable secret, so operators learn before a reboot that a guest
 * will not come back. Reads the guest inventory from HostState; writes results to its metrics,
 * `/status` and the restart watcher.
 */
export class BarbicanPreflightExtension implements AgentExtension {
  readonly name = 'barbican-preflight';
  private preflight: Preflight | null = null;
  private session: OpenStackSession | null = null;
  private state: 'not-configured' | 'invalid' | 'ready' = 'not-configured';
  private problem: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** One round at a time; the interval skips a tick while a (spread) round still runs. */
  private runner: SerialRunner | null = null;
  private abort = new AbortController();
  private unregister: (() => void) | null = null;
  private log: Logger | null = null;
  private inventoryAt: number | null = null;
  /** Removes the one-shot listener waiting for the first guest inventory. */
  private stopWaiting: (() => void) | null = null;
  private stopped = false;
  private totalsFile: StateFile<PreflightTotals> | null = null;
  /** False while the totals file could not be read: it is looked at again before each save, never saved over. */
  private totalsLoaded = false;
  private saving: Promise<void> = Promise.resolve();
  private savePending = false;

  enabled(config: AgentConfig): boolean {
    return config.barbican.enabled;
  }

  private setup(ctx: ExtensionContext): void {
    const cfg = ctx.config.barbican;
    this.log = ctx.log.child({ extension: this.name });
    const opened = openSession(
      { ...ctx.config.openstack, cloud: cfg.cloud ?? ctx.config.openstack.cloud, interface: cfg.interface ?? ctx.config.openstack.interface },
      { env: ctx.env, log: this.log, userAgent: 'vtpm-agent barbican-preflight' },
    );
    this.state = opened.state;
    if (opened.state === 'invalid') {
      this.problem = `${opened.error.code}: ${opened.error.message}`;
      this.log.error({ err: opened.error.toJSON() }, 'Barbican preflight: OpenStack credentials are invalid');
      return;
    }
    if (opened.state === 'not-configured') return;
    this.session = opened.session;
    for (const w of opened.session.cloud.warnings) this.log.warn(w);
    const session = opened.session;
    this.preflight = new Preflight({
      ttlMs: cfg.ttlSeconds * 1000,
      concurrency: cfg.concurrency,
      spreadMs: cfg.spread ? cfg.intervalSeconds * 1000 * 0.8 : 0,
      check: (t, signal) => checkSecret(session, t.secretUuid, { payload: cfg.checkPayload, signal, timeoutMs: ctx.config.openstack.timeoutSeconds * 1000 }),
      onCounted: () => this.requestSave(),
    });
    this.totalsFile = ctx.stateFiles.file({
      name: 'barbican/preflight',
      path: path.join(ctx.config.stateDir, 'barbican', 'preflight.json'),
      version: 1,
      schema: preflightTotalsSchema,
      consequence: 'Barbican preflight counts are kept in memory only (a restart would lose them)',
    });
  }

  /**
   * Restores the counts an earlier agent saved (so a crash before the next scrape loses none). A
   * file unreadable at start is read again before each save: its counts are then added to ours.
   */
  private async loadTotals(): Promise<boolean> {
    if (this.totalsLoaded) return true;
    const loaded = await this.totalsFile!.load();
    if (!loaded.canSave) return false;
    if (loaded.value) this.preflight!.restore(addTotals(loaded.value, this.preflight!.totals()));
    this.totalsLoaded = true;
    return true;
  }

  /** Saves after each counted check, coalesced: one write in flight and at most one queued. */
  private requestSave(): void {
    if (this.savePending || !this.totalsFile) return;
    this.savePending = true;
    this.saving = this.saving.then(async () => {
      this.savePending = false;
      if (!(await this.loadTotals())) return;
      // Failures are logged once per change and shown in /readyz by the state file.
      await this.totalsFile!.save(this.preflight!.totals()).catch(() => undefined);
    });
  }

  async start(ctx: ExtensionContext): Promise<void> {
    this.abort = new AbortController();
    this.stopped = false;
    this.setup(ctx);
    const preflight = this.preflight;
    if (!preflight) return;
    await this.loadTotals();
    this.unregister = ctx.restartReasons.register({
      reasonFor: (uuid) => {
        const r = preflight.resultFor(uuid);
        if (!r || r.result === 'ok' || r.result === 'unavailable') return undefined;
        return { reason: 'barbican_access', detail: `Barbican preflight as Nova's identity: ${r.result} (${r.detail})` };
      },
    });
    const runner = new SerialRunner({
      run: () => this.round(ctx, preflight),
      onError: (err) => this.log?.error({ err: toAgentError(err, 'VTPM_ERR_BARBICAN_PREFLIGHT').toJSON() }, 'Barbican preflight round failed'),
    });
    this.runner = runner;
    // Usually the agent starts before the first guest inventory: the first round then runs as
    // soon as it appears, not a whole interval later.
    if (!ctx.state.get(GUEST_INVENTORY)?.data) this.waitForInventory(ctx, runner);
    void runner.trigger();
    // Later rounds start in this host's splay slot of each interval (wall-clock aligned), so a
    // fleet restarted at once does not send its rounds to Barbican in the same second.
    const intervalMs = ctx.config.barbican.intervalSeconds * 1000;
    const offsetMs = splayOffsetMs(`${splayIdentity(ctx.config.identity)} barbican-preflight`, intervalMs, ctx.config.splay);
    const next = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        runner.triggerIfIdle();
        next();
      }, ctx.config.splay > 0 ? delayToNextSlotMs(Date.now(), intervalMs, offsetMs) : intervalMs);
      this.timer.unref();
    };
    next();
  }

  private waitForInventory(ctx: ExtensionContext, runner: SerialRunner): void {
    const onResult = (r: ProbeResult): void => {
      if (r.probe !== GUEST_INVENTORY || !r.data) return;
      this.stopWaiting?.();
      // A round still finishing (it found no inventory) ends first; this one runs right after.
      if (!this.stopped) void runner.trigger();
    };
    ctx.state.on('result', onResult);
    this.stopWaiting = () => {
      ctx.state.off('result', onResult);
      this.stopWaiting = null;
    };
  }

  /** One round of `preflight` (the daemon's, or the one-shot check's own without spreading). */
  private async round(ctx: ExtensionContext, preflight: Preflight): Promise<void> {
    const inv = ctx.state.get(GUEST_INVENTORY);
    if (!inv?.data) {
      this.problem = 'no guest inventory yet';
      return;
    }
    this.inventoryAt = inv.data.collectedAt;
    const targets = preflightTargets(inv.data);
    try {
      const done = await preflight.run(targets, AbortSignal.any([this.abort.signal, ctx.signal]));
      this.problem = null;
      for (const c of done) {
        if (c.result !== 'ok') this.log?.warn({ instanceUuid: c.instanceUuid, secretUuid: c.secretUuid, mode: c.mode, result: c.result, detail: c.detail }, 'vTPM secret not accessible to Nova\'s identity');
        else this.log?.debug({ instanceUuid: c.instanceUuid, payloadChecked: c.payloadChecked }, 'vTPM secret accessible');
      }
    } catch (err) {
      if (this.abort.signal.aborted || ctx.signal.aborted) return;
      const e = toAgentError(err, 'VTPM_ERR_BARBICAN_PREFLIGHT');
      this.problem = `${e.code}: ${e.message}`;
      this.log?.error({ err: e.toJSON() }, 'Barbican preflight round failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWaiting?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort();
    await this.runner?.stop();
    await this.saving;
    this.unregister?.();
    this.unregister = null;
    await this.session?.close();
    this.session = null;
  }

  registerMetrics(registry: Registry): void {
    registerPreflightMetrics(registry, () => this.preflight);
  }

  status(): CheckSection {
    if (this.state === 'not-configured') return { name: this.name, ok: null, summary: 'no OpenStack credentials configured', data: { state: this.state } };
    if (this.state === 'invalid' || !this.preflight) return { name: this.name, ok: false, summary: this.problem ?? 'not started', data: { state: this.state, problem: this.problem } };
    const current = this.preflight.current().sort((a, b) => a.instanceUuid.localeCompare(b.instanceUuid));
    const bad = current.filter((c) => c.result !== 'ok');
    const summary =
      this.preflight.lastRunAt === null
        ? (this.problem ?? 'first round pending')
        : current.length === 0
          ? 'no vTPM guest on this host needs Barbican to restart'
          : bad.length === 0
            ? `${current.length} vTPM secret(s) readable by Nova's identity`
            : `${bad.length} of ${current.length} vTPM secret(s) NOT readable by Nova's identity: those guests will not come back after a host reboot`;
    return {
      name: this.name,
      ok: this.preflight.lastRunAt === null ? null : bad.length === 0,
      summary,
      table: current.length ? [['instance', 'secret', 'mode', 'result', 'detail'], ...current.map((c) => [c.instanceUuid, c.secretUuid, c.mode, c.result, c.detail])] : undefined,
      data: {
        state: this.state,
        problem: this.problem,
        lastRunAt: this.preflight.lastRunAt,
        inventoryCollectedAt: this.inventoryAt,
        checksByResult: this.preflight.checksByResult,
        guests: current,
      },
    };
  }

  async checkOnce(ctx: ExtensionContext): Promise<CheckSection> {
    this.abort = new AbortController();
    this.setup(ctx);
    if (this.preflight) {
      // One round now, not spread over the interval and ignoring the TTL: `check` is interactive.
      const cfg = ctx.config.barbican;
      const session = this.session!;
      this.preflight = new Preflight({
        ttlMs: 0,
        concurrency: cfg.concurrency,
        spreadMs: 0,
        check: (t, signal) => checkSecret(session, t.secretUuid, { payload: cfg.checkPayload, signal, timeoutMs: ctx.config.openstack.timeoutSeconds * 1000 }),
      });
      await this.round(ctx, this.preflight);
    }
    const section = this.status();
    await this.session?.close();
    this.session = null;
    return section;
  }
}

function addTotals(a: PreflightTotals, b: PreflightTotals): PreflightTotals {
  const sum = <K extends string>(x: Record<K, number>, y: Record<K, number>) => Object.fromEntries(Object.keys(x).map((k) => [k, x[k as K] + (y[k as K] ?? 0)])) as Record<K, number>;
  return { version: 1, checksByResult: sum(a.checksByResult, b.checksByResult), failures: sum(a.failures, b.failures) };
}
