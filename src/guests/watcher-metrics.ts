import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metric-prefix.js';
import type { RestartTotals, Transition, Watch } from './restart-model.js';
import { METRIC_NAMES } from '../metric-names.js';

export interface WatcherView {
  watch(): Watch | null;
  /**
   * Persisted with the watch, so they survive a crash between a decision and the next scrape;
   * null until loaded (no series then: a 0 before the restore would read as a false increase).
   */
  totals(): RestartTotals | null;
  bootTime(): number | null;
  eventStreamUp(): boolean | null;
  eventStreamRestarts(): number;
  lastSnapshotAt(): number | null;
  lastSnapshotGuests(): number | null;
}

/**
 * The restart watcher's metrics. Gauges read the watcher's memory at scrape time; counters and
 * the histogram move only on a decision, which is made once per guest per boot.
 */
export class WatcherMetrics {
  private duration: Histogram | undefined;

  register(registry: Registry, view: WatcherView): void {
    new Counter({
      name: METRIC_NAMES.guestRestarts,
      help: 'vTPM guests followed across a host reboot, by outcome (restarted, failed, gone = undefined before it came back)',
      labelNames: ['outcome'] as const,
      registers: [registry],
      collect() {
        // Mirrors the persisted totals (restored at start): a crash loses no outcome.
        this.reset();
        const totals = view.totals();
        if (!totals) return;
        for (const outcome of ['restarted', 'failed', 'gone'] as const) this.inc({ outcome }, totals[outcome]);
      },
    });
    this.duration = new Histogram({
      name: `${METRIC_PREFIX}guest_restart_duration_seconds`,
      help: 'Time from host boot (or from the start of the watch) until a vTPM guest ran again',
      buckets: [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600],
      registers: [registry],
    });
    new Gauge({
      name: METRIC_NAMES.guestRestartFailed,
      help: 'A vTPM guest that was running before the host reboot, failed to restart and is still down (1), with the reason',
      labelNames: ['instance_uuid', 'domain', 'reason'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const g of view.watch()?.guests ?? []) {
          if (g.status === 'failed' && g.down) this.set({ instance_uuid: g.instanceUuid ?? g.uuid, domain: g.name, reason: g.reason ?? 'unknown' }, 1);
        }
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}guest_restarts_pending`,
      help: 'vTPM guests that ran before the host reboot and are neither back nor failed yet',
      registers: [registry],
      collect() {
        const w = view.watch();
        this.set(w ? w.guests.filter((g) => g.status === 'pending').length : 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}guest_restart_deadline_timestamp_seconds`,
      help: 'When guests still down after the current reboot count as failed; absent without a reboot watch',
      registers: [registry],
      collect() {
        this.reset();
        const w = view.watch();
        if (w) this.set(w.deadlineAt / 1000);
      },
    });
    new Gauge({
      name: METRIC_NAMES.hostBootTimestamp,
      help: 'When the host booted (Unix seconds, /proc/stat btime)',
      registers: [registry],
      collect() {
        this.reset();
        const t = view.bootTime();
        if (t !== null) this.set(t);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}guest_event_stream_up`,
      help: 'Whether the libvirt lifecycle event stream (virsh event) is running; absent when disabled',
      registers: [registry],
      collect() {
        this.reset();
        const up = view.eventStreamUp();
        if (up !== null) this.set(up ? 1 : 0);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}guest_event_stream_restarts_total`,
      help: 'How often the libvirt event stream was restarted since the agent started',
      registers: [registry],
      collect() {
        // The stream keeps the count; mirror it (a counter that only ever grows).
        this.reset();
        this.inc(view.eventStreamRestarts());
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}guest_snapshot_timestamp_seconds`,
      help: 'When the set of running vTPM guests was last written to the state dir',
      registers: [registry],
      collect() {
        this.reset();
        const t = view.lastSnapshotAt();
        if (t !== null) this.set(t / 1000);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}guest_snapshot_guests`,
      help: 'Running vTPM guests in the latest snapshot',
      registers: [registry],
      collect() {
        this.reset();
        const n = view.lastSnapshotGuests();
        if (n !== null) this.set(n);
      },
    });
  }

  record(transitions: Transition[]): void {
    for (const t of transitions) {
      if (t.outcome === 'restarted' && t.timeToRestartSeconds !== null) this.duration?.observe(t.timeToRestartSeconds);
    }
  }
}
