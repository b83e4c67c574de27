import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import type { AgentExtension, ExtensionContext } from '../extension-api.js';
import type { CheckSection } from '../results.js';
import { NovaLogFollower, stateFilePath } from './follower.js';
import { registerNovaLogMetrics } from './metrics.js';

/** A log attribution older than this does not explain a failed restart any more. */
const REASON_MAX_AGE_MS = 6 * 3600 * 1000;
/** A failure this recent makes the `check` section red. */
const RECENT_MS = 24 * 3600 * 1000;

/**
 * The nova-compute log follower as an agent extension: follows the configured source, counts
 * Barbican failures by reason, and tells the restart watcher why a guest did not come back when
 * nova-compute logged it.
 */
export class NovaLogExtension implements AgentExtension {
  readonly name = 'nova-log';
  private follower: NovaLogFollower | null = null;
  private config: AgentConfig | null = null;
  private unregister: (() => void) | null = null;
  private log: Logger | null = null;
  private starting: Promise<void> = Promise.resolve();

  enabled(config: AgentConfig): boolean {
    return config.novaLog.source !== 'none';
  }

  async start(ctx: ExtensionContext): Promise<void> {
    this.config = ctx.config;
    this.log = ctx.log.child({ extension: this.name });
    const follower = this.create(ctx, this.log);
    this.follower = follower;
    this.unregister = ctx.restartReasons.register({
      reasonFor: (uuid) => {
        const f = follower.reasonFor(uuid);
        if (!f || Date.now() - f.at > REASON_MAX_AGE_MS) return undefined;
        return { reason: 'barbican_access', detail: `nova-compute logged a Barbican failure for this instance: ${f.reason}` };
      },
    });
    // The first read may be a long catch-up (a big backlog after downtime): the agent's start
    // does not wait for it.
    this.starting = follower.start().catch((err: unknown) => {
      this.log?.error({ err: err instanceof Error ? err.message : String(err) }, 'nova-compute log follower failed to start');
    });
  }

  /** Resolves once the first read after `start` is done (tests, and `stop`). */
  async started(): Promise<void> {
    await this.starting;
  }

  private create(ctx: ExtensionContext, log: Logger, readOnly = false): NovaLogFollower {
    return new NovaLogFollower({
      config: ctx.config.novaLog,
      stateFile: stateFilePath(ctx.config.stateDir, ctx.config.novaLog.stateFile),
      store: ctx.stateFiles,
      hostPath: ctx.hostPath,
      log,
      env: ctx.env,
      readOnly,
    });
  }

  async stop(): Promise<void> {
    this.unregister?.();
    this.unregister = null;
    // The follower interrupts a first read still in progress; its saved position stays exact.
    await this.follower?.stop();
    await this.starting;
  }

  registerMetrics(registry: Registry): void {
    registerNovaLogMetrics(
      registry,
      () => this.follower,
      () => this.config?.novaLog.source ?? 'none',
    );
  }

  readiness(): { ready: boolean; detail?: string } {
    // A missing log is reported (vtpm_nova_log_up 0), it does not make the agent unready.
    return { ready: true };
  }

  status(): CheckSection {
    const f = this.follower;
    const cfg = this.config?.novaLog;
    if (!f || !cfg) return { name: this.name, ok: null, summary: 'not started', data: null };
    const totals = f.incidents.totals;
    const failures = Object.values(totals).reduce((a, b) => a + b, 0);
    const where = cfg.source === 'file' ? cfg.path : cfg.source === 'journald' ? `unit ${cfg.unit}` : cfg.glob;
    const instances = [...f.incidents.instances()].sort((a, b) => b.at - a.at);
    // Counts are kept forever; only a failure of the last day makes the check red.
    const last = f.incidents.lastCountedAt;
    const recent = last !== null && Date.now() - last < RECENT_MS;
    // An unreadable state file is left alone (never saved over): counts are not persisted meanwhile.
    const stateProblem = f.stats.stateProblem ? `; ${f.stats.stateProblem}` : '';
    return {
      name: this.name,
      ok: f.stats.following && !f.stats.stateProblem ? !recent : false,
      summary:
        (f.stats.following
          ? `following ${cfg.source} ${where}: ${failures} Barbican failure(s) seen${last !== null ? `, the latest at ${new Date(last).toISOString()}` : ''}${instances.length ? `, ${instances.length} guest(s) affected` : ''}`
          : `not following ${cfg.source} ${where}${f.stats.lastError ? `: ${f.stats.lastError.message}` : ' (not there yet)'}`) + stateProblem,
      table: instances.length
        ? [['instance', 'reason', 'failures', 'restart failed', 'last seen'], ...instances.slice(0, 20).map((i) => [i.instanceUuid, i.reason, String(i.count), i.restartFailed ? 'yes' : 'no', new Date(i.at).toISOString()])]
        : undefined,
      data: { source: cfg.source, target: where, stats: f.stats, totals, lastFailureAt: last, instances },
    };
  }

  /**
   * `vtpm-agent check`: the saved counts plus whatever is new since the saved position, read
   * once without saving (the daemon owns the position).
   */
  async checkOnce(ctx: ExtensionContext): Promise<CheckSection> {
    this.config = ctx.config;
    const log = ctx.log.child({ extension: this.name });
    const follower = this.create(ctx, log, true);
    this.follower = follower;
    if (ctx.config.novaLog.source === 'journald') {
      // journalctl -f never ends: report the counts saved by the daemon.
      await follower.loadOnly();
      return { ...this.status(), summary: `journald source: ${this.status().summary.replace(/^not following/, 'saved counts for')}` };
    }
    await follower.start();
    await follower.stop();
    return this.status();
  }
}
