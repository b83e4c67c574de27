import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AgentConfig } from '../config/schema.js';
import type { AgentExtension, ExtensionContext } from '../extension-api.js';
import type { CheckSection, ProbeResult } from '../results.js';
import { AgentError, toAgentError } from '../errors.js';
import { readBootId, readBootTime } from '../host/boot.js';
import { classifyFailure } from './classify-failure.js';
import { EventStream, type LifecycleEvent } from './events.js';
import { guestStateFiles, type GuestStateFiles } from './state-files.js';
import { swtpmFailureSince } from './swtpm-log.js';
import { GUEST_INVENTORY, type GuestInventory, type RestartFailureReason, type VtpmGuest } from './types.js';
import { evaluateWatch, noRestartTotals, snapshotFromInventory, startWatch, type FailureContext, type RestartTotals, type Snapshot, type TrackedGuest, type Transition, type Watch } from './restart-model.js';
import { WatcherMetrics } from './watcher-metrics.js';
import { restartSection } from './watcher-report.js';
import { libvirtViewResolver } from '../host/libvirtd-location.js';
import { SerialRunner } from '../util/serial-runner.js';

export { SNAPSHOT_FILE, WATCH_FILE } from './state-files.js';

/** The inventory a refresh brought, or why there is none (shown as the watcher's error). */
function inventoryOf(result: ProbeResult<GuestInventory> | undefined): { inventory: GuestInventory } | { error: string } {
  if (result?.ok && result.data) return { inventory: result.data };
  return { error: `libvirt: ${result?.error?.message ?? 'no guest inventory (the agent is stopping, or has no guest-inventory probe)'}` };
}

/**
 * Follows vTPM guests across host reboots. On start it compares the boot id with the last
 * snapshot's; on a new boot it tracks every guest that ran before (pending → restarted / failed /
 * gone), driven by libvirt lifecycle events and a periodic resync, until none is pending. It
 * snapshots the running vTPM guests regularly and at shutdown for the next boot.
 */
export class GuestRestartWatcher implements AgentExtension {
  readonly name = 'guest-restart-watcher';
  private ctx: ExtensionContext | undefined;
  private log: Logger | undefined;
  private bootId: string | null = null;
  private bootTime: number | null = null;
  private watch: Watch | null = null;
  private lastInventory: GuestInventory | null = null;
  private lastError: string | null = null;
  /** A problem found at start (boot id unreadable): stays in status, unlike libvirt errors that clear on success. */
  private initError: string | null = null;
  private lastSnapshotAt: number | null = null;
  private lastSnapshotGuests: number | null = null;
  /** collectedAt of the inventory the last snapshot was written from. */
  private lastSnapshotInventoryAt: number | null = null;
  private events: EventStream | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /**
   * initialize() completed: this boot's watch (if any) is on disk, so the previous boot's snapshot
   * may be overwritten. Until then no snapshot is written and initialize is retried each refresh.
   */
  private watchReady = false;
  /** Restart totals of the last saved watch when this boot has none (yet). */
  private carriedTotals: RestartTotals = noRestartTotals();
  private stopping = false;
  /**
   * Whether the next refresh must read libvirt now (an event, a deadline, a resync); the periodic
   * snapshot alone makes do with the probe's own recent inventory from the state.
   */
  private freshNeeded = true;
  /** Serialises refreshes: an event during a refresh asks for one more, never a parallel one. */
  private runner = this.newRunner();
  private readonly metrics = new WatcherMetrics();
  /** Test/bench hook: called after every refresh with the decisions it made. */
  onTransitions: ((transitions: Transition[], at: number) => void) | undefined;
  lastEvent: LifecycleEvent | null = null;

  /** A fresh runner per start: a stopped one refuses triggers. */
  private newRunner(): SerialRunner {
    return new SerialRunner({ run: () => this.refresh(), onError: (err) => this.log?.error({ err: toAgentError(err).toJSON() }, 'restart watcher refresh failed') });
  }

  enabled(config: AgentConfig): boolean {
    return config.guests.watcherEnabled;
  }

  private files(ctx: ExtensionContext): GuestStateFiles {
    return guestStateFiles(ctx.stateFiles, ctx.config.stateDir);
  }

  async start(ctx: ExtensionContext): Promise<void> {
    this.ctx = ctx;
    this.stopping = false;
    this.freshNeeded = true;
    this.runner = this.newRunner();
    this.watchReady = false;
    this.log = ctx.log.child({ extension: this.name });
    const cfg = ctx.config.guests;
    // Not ready until initialize succeeds (readiness); a failure is retried at each refresh.
    await this.tryInitialize(ctx);
    if (cfg.eventWatcher) {
      this.events = new EventStream({
        virshPath: ctx.config.libvirt.virshPath,
        uri: ctx.config.libvirt.uri,
        env: ctx.env,
        log: this.log,
        onEvent: (e) => this.onEvent(e),
        onConnect: () => this.refreshSoon(),
      });
      this.events.start();
    }
    this.snapshotTimer = setInterval(() => void this.runner.trigger(), cfg.snapshotIntervalSeconds * 1000);
    this.resyncTimer = setInterval(() => {
      if (this.watch && this.watch.guests.some((g) => g.status === 'pending' || (g.status === 'failed' && g.down))) void this.refreshSoon();
    }, cfg.resyncIntervalSeconds * 1000);
    this.armDeadline();
    // The first look at libvirt runs in the background: a slow or absent libvirtd must not hold
    // up the agent's start (the watch is already decided from the files above).
    void this.refreshSoon();
  }

  /**
   * Runs initialize; on failure reports it (it stays in status until a retry succeeds) and leaves
   * watchReady false, so no snapshot overwrites the previous boot's before its watch is saved.
   */
  private async tryInitialize(ctx: ExtensionContext): Promise<boolean> {
    try {
      await this.initialize(ctx);
      if (this.initError) this.log?.info('restart watcher initialised after an earlier failure');
      this.initError = null;
      return true;
    } catch (err) {
      // Without a boot id or a saved watch nothing is compared and nothing snapshotted; retried at each refresh.
      const e = toAgentError(err);
      if (e.message !== this.initError) this.log?.error({ err: e.toJSON() }, 'restart watcher could not initialise; retrying at each refresh');
      this.initError = e.message;
      return false;
    }
  }

  /** Boot id, snapshot and open watch; decides whether this is a new boot. Never overwrites the old snapshot before the watch exists. */
  private async initialize(ctx: ExtensionContext): Promise<void> {
    const cfg = ctx.config.guests;
    const files = this.files(ctx);
    this.bootId = await readBootId(ctx.hostPath(cfg.bootIdPath));
    this.bootTime = await readBootTime(ctx.hostPath(cfg.procStatPath));
    if (this.watch && this.watch.bootId === this.bootId) {
      // An earlier attempt built this boot's watch but could not save it: save that one (same start and deadline).
      await files.watch.save(this.watch);
      this.watchReady = true;
      return;
    }
    const existing = usable(await files.watch.load());
    // The totals go on from the last watch, whichever boot it was for.
    this.carriedTotals = existing?.totals ?? noRestartTotals();
    if (existing && existing.bootId === this.bootId) {
      this.watch = existing;
      this.watchReady = true;
      this.log?.info({ pending: existing.guests.filter((g) => g.status === 'pending').length }, 'continuing the restart watch of this boot');
      return;
    }
    const snapshot = usable(await files.snapshot.load());
    if (snapshot && snapshot.bootId !== this.bootId) {
      this.watch = startWatch(snapshot, this.bootId, this.bootTime, Date.now(), cfg.restartDeadlineSeconds, this.carriedTotals);
      this.log?.warn({ previousBootId: snapshot.bootId, guests: snapshot.guests.length }, 'host rebooted since the last snapshot; following vTPM guests that were running');
      await files.watch.save(this.watch);
      this.watchReady = true;
      return;
    }
    // Same boot without a watch (first run, or the watch file was lost): nothing to follow. A
    // watch of an older boot is not carried on: its "still down" series would never be re-checked.
    this.watch = null;
    this.watchReady = true;
  }

  private onEvent(e: LifecycleEvent): void {
    this.lastEvent = e;
    if (!this.watch) return;
    const tracked = this.watch.guests.some((g) => g.name === e.domain && (g.status === 'pending' || g.status === 'failed'));
    if (tracked) void this.refreshSoon();
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    // A refresh still in flight when stop() began must not leave a new timer behind.
    if (this.stopping) return;
    const w = this.watch;
    if (!w || !w.guests.some((g) => g.status === 'pending')) return;
    const delay = Math.max(0, w.deadlineAt - Date.now()) + 50;
    // setTimeout overflows past ~24.8 days; the resync covers any longer deadline.
    if (delay < 2 ** 31 - 1) this.deadlineTimer = setTimeout(() => void this.refreshSoon(), delay);
  }

  /** Runs a refresh with a new libvirt read now, or once more after the one in flight. */
  refreshSoon(): Promise<void> {
    this.freshNeeded = true;
    return this.runner.trigger();
  }

  /**
   * The probe's latest inventory when a snapshot tick can use it: read within the snapshot interval
   * (the guest-inventory probe's own schedule usually runs as often) and not older than the one the
   * watcher last saw. Saves a second virsh round per interval.
   */
  private recentInventory(ctx: ExtensionContext): ProbeResult<GuestInventory> | undefined {
    const latest = ctx.state.get(GUEST_INVENTORY);
    if (!latest?.ok || !latest.data) return undefined;
    const age = Date.now() - latest.data.collectedAt;
    const notOlder = latest.data.collectedAt >= (this.lastInventory?.collectedAt ?? -Infinity);
    return age < ctx.config.guests.snapshotIntervalSeconds * 1000 && notOlder ? latest : undefined;
  }

  private async refresh(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || this.stopping) return;
    if (!this.watchReady) {
      if (await this.tryInitialize(ctx)) this.armDeadline();
      if (this.stopping) return;
    }
    // The agent's one inventory (the /metrics and Barbican views get the same one): run now, unless
    // only the periodic snapshot asked and the probe's schedule brought a recent one.
    const fresh = this.freshNeeded;
    this.freshNeeded = false;
    const result = (!fresh && this.recentInventory(ctx)) || (await ctx.refresh(GUEST_INVENTORY));
    if (!result && ctx.signal.aborted) return;
    const got = inventoryOf(result);
    if ('error' in got) {
      this.lastError = got.error;
      this.log?.warn({ err: result?.error }, 'restart watcher could not read libvirt');
      return;
    }
    const inv = got.inventory;
    this.lastInventory = inv;
    this.lastError = null;
    const now = Date.now();
    if (this.watchReady && this.watch && this.bootId && this.watch.bootId === this.bootId) {
      const evidence = await this.gatherEvidence(ctx, this.watch, inv);
      const result = evaluateWatch(this.watch, inv, now, (t, c, fctx) => this.classify(t, c, fctx, evidence));
      if (result.changed) {
        this.watch = result.watch;
        await this.persistWatch();
        this.metrics.record(result.transitions);
        for (const t of result.transitions) {
          const level = t.outcome === 'restarted' ? 'info' : 'warn';
          this.log?.[level]({ domain: t.name, instanceUuid: t.instanceUuid, outcome: t.outcome, reason: t.reason, timeToRestartSeconds: t.timeToRestartSeconds }, 'vTPM guest restart decided');
        }
        this.armDeadline();
      }
      this.onTransitions?.(result.transitions, now);
    }
    await this.writeSnapshot(inv, now);
  }

  private classify(t: TrackedGuest, current: VtpmGuest, fctx: FailureContext, evidence: Map<string, string | null>) {
    return classifyFailure(t, current, fctx, {
      external: this.ctx!.restartReasons.reasonFor(t.instanceUuid ?? t.uuid),
      swtpmLine: evidence.get(t.uuid) ?? null,
    });
  }

  /** swtpm log lines for guests that may be failing, read before the (pure) evaluation. */
  private async gatherEvidence(ctx: ExtensionContext, watch: Watch, inv: GuestInventory): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    const suspects = watch.guests.filter((g) => g.status === 'pending' || (g.status === 'failed' && g.down));
    if (suspects.length === 0) return out;
    const names = new Map(inv.guests.map((g) => [g.uuid, g.name]));
    // The swtpm logs live in libvirt's view (in Atmosphere: inside the libvirt container); found by
    // a /proc scan, so only when a guest's log is to be read.
    const dir = (await libvirtViewResolver(ctx.hostPath))(ctx.config.guests.swtpmLogDir);
    await Promise.all(suspects.map(async (g) => out.set(g.uuid, await swtpmFailureSince(dir, names.get(g.uuid) ?? g.name, watch.startedAt))));
    return out;
  }

  private async persistWatch(): Promise<void> {
    if (!this.ctx || !this.watch) return;
    try {
      await this.files(this.ctx).watch.save(this.watch);
    } catch {
      // Logged once per change and shown in /readyz by the state file; retried at the next change.
    }
  }

  /** Only once this boot's watch exists (initialize completed): the previous boot's snapshot is consumed by then. */
  private async writeSnapshot(inv: GuestInventory, now: number): Promise<void> {
    if (!this.ctx || !this.bootId || !this.watchReady) return;
    const snap: Snapshot = snapshotFromInventory(inv, this.bootId, this.bootTime, now);
    try {
      await this.files(this.ctx).snapshot.save(snap);
      this.lastSnapshotAt = now;
      this.lastSnapshotGuests = snap.guests.length;
      this.lastSnapshotInventoryAt = inv.collectedAt;
    } catch {
      // Logged once per change and shown in /readyz by the state file; retried at the next refresh.
    }
  }

  async stop(): Promise<void> {
    // First, so nothing re-arms a timer or starts another refresh while stop waits for the one in flight.
    this.stopping = true;
    clearInterval(this.snapshotTimer);
    clearInterval(this.resyncTimer);
    clearTimeout(this.deadlineTimer);
    this.snapshotTimer = undefined;
    this.resyncTimer = undefined;
    this.deadlineTimer = undefined;
    const eventsStopped = this.events?.stop();
    await this.runner.stop();
    // A last snapshot so the next boot knows what ran, from the latest good inventory of the
    // state, not a new libvirt read: at agent stop the scheduler is stopping (no refresh runs),
    // and in a host shutdown guests may already be going down, so a read now could drop guests
    // that ran. Written only when newer than the one snapshotted (the probe's schedule runs too).
    const latest = this.ctx?.state.get(GUEST_INVENTORY);
    if (latest?.ok && latest.data && latest.data.collectedAt > (this.lastSnapshotInventoryAt ?? -Infinity)) {
      await this.writeSnapshot(latest.data, Date.now());
    }
    await eventsStopped;
  }

  registerMetrics(registry: Registry): void {
    this.metrics.register(registry, {
      watch: () => this.watch,
      totals: () => (this.watchReady ? (this.watch?.totals ?? this.carriedTotals) : null),
      bootTime: () => this.bootTime,
      eventStreamUp: () => (this.events ? this.events.connected : null),
      eventStreamRestarts: () => this.events?.restarts ?? 0,
      lastSnapshotAt: () => this.lastSnapshotAt,
      lastSnapshotGuests: () => this.lastSnapshotGuests,
    });
  }

  readiness(): { ready: boolean; detail?: string } {
    if (this.watchReady) return { ready: true };
    return { ready: false, detail: this.initError ? `cannot initialise (${this.initError}); retrying at each refresh` : 'reading boot id and the last guest snapshot' };
  }

  status(): CheckSection {
    return restartSection({
      bootId: this.bootId,
      watch: this.watch,
      inventory: this.lastInventory,
      error: [this.initError, this.lastError].filter(Boolean).join('; ') || null,
      watching: true,
    });
  }

  /** For `vtpm-agent check`: reads state and libvirt once, decides nothing persistently. */
  async checkOnce(ctx: ExtensionContext): Promise<CheckSection> {
    const cfg = ctx.config.guests;
    const files = this.files(ctx);
    let bootId: string | null = null;
    let error: string | null = null;
    let watch: Watch | null = null;
    let inventory: GuestInventory | null = null;
    try {
      bootId = await readBootId(ctx.hostPath(cfg.bootIdPath));
      const bootTime = await readBootTime(ctx.hostPath(cfg.procStatPath));
      // A file there but unusable is an error in the check's answer, not "nothing to follow".
      const readable = <T>(loaded: { value: T | null; problem: string | null }): T | null => {
        if (loaded.value === null && loaded.problem) error = [error, loaded.problem].filter(Boolean).join('; ');
        return loaded.value;
      };
      watch = readable(await files.watch.load());
      const snapshot = readable(await files.snapshot.load());
      if ((!watch || watch.bootId !== bootId) && snapshot && snapshot.bootId !== bootId) {
        watch = startWatch(snapshot, bootId, bootTime, Date.now(), cfg.restartDeadlineSeconds);
      }
    } catch (err) {
      error = toAgentError(err).message;
    }
    // The inventory of the check's own probe round (the same one /metrics would show).
    const got = inventoryOf(await ctx.refresh(GUEST_INVENTORY));
    if ('error' in got) error = got.error;
    else inventory = got.inventory;
    if (inventory && watch && bootId && watch.bootId === bootId) {
      try {
        const evidence = await this.gatherEvidence(ctx, watch, inventory);
        watch = evaluateWatch(watch, inventory, Date.now(), (t, c, f) =>
          classifyFailure(t, c, f, { external: ctx.restartReasons.reasonFor(t.instanceUuid ?? t.uuid), swtpmLine: evidence.get(t.uuid) ?? null }),
        ).watch;
      } catch (err) {
        error = `libvirt: ${toAgentError(err).message}`;
      }
    }
    return restartSection({ bootId, watch, inventory, error, watching: false });
  }
}

export type { RestartFailureReason };

/**
 * The document, or null when there is none (absent, or corrupt and set aside: start afresh). A
 * file that exists but cannot be read throws: deciding without it could start a wrong watch or
 * overwrite the only copy of the previous boot's snapshot.
 */
function usable<T>(loaded: { value: T | null; problem: string | null; canSave: boolean }): T | null {
  if (!loaded.canSave) throw new AgentError('VTPM_ERR_STATE_UNREADABLE', loaded.problem ?? 'state file unusable');
  return loaded.value;
}
