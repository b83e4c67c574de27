import { z } from 'zod';
import { isActiveState, restartFailureReasons, type GuestInventory, type RestartFailureReason, type VtpmGuest } from './types.js';

/**
 * The restart watch as pure data and pure transitions, so every rule is unit-testable and the
 * whole state survives an agent restart (it is persisted after each change).
 */

const secretModes = ['none', 'user', 'host', 'deployment', 'unknown'] as const;

const snapshotGuestSchema = z.object({
  uuid: z.string(),
  name: z.string(),
  instanceUuid: z.string().nullable(),
  secretMode: z.enum(secretModes),
  encryptionSecret: z.string().nullable(),
});
export type SnapshotGuest = z.infer<typeof snapshotGuestSchema>;

/** The running vTPM guests of one boot, written regularly and at shutdown. */
export const snapshotSchema = z.object({
  version: z.literal(1),
  bootId: z.string().min(1),
  /** Unix seconds of the boot (from /proc/stat btime); null when unknown. */
  bootTime: z.number().nullable(),
  /** Unix ms. */
  takenAt: z.number(),
  guests: z.array(snapshotGuestSchema),
});
export type Snapshot = z.infer<typeof snapshotSchema>;

export type TrackedStatus = 'pending' | 'restarted' | 'failed' | 'gone';

const trackedGuestSchema = snapshotGuestSchema.extend({
  status: z.enum(['pending', 'restarted', 'failed', 'gone']),
  reason: z.enum(restartFailureReasons as [RestartFailureReason, ...RestartFailureReason[]]).nullable(),
  detail: z.string().nullable(),
  /** Unix ms of the decision (restart seen, failure decided, guest gone). */
  decidedAt: z.number().nullable(),
  timeToRestartSeconds: z.number().nullable(),
  /** A failed guest that is still down (its restart-failed series is exported while true). */
  down: z.boolean(),
  /** libvirt tried to start it and failed at some point: remembered, since a libvirtd restart resets the state reason. */
  attempted: z.boolean().default(false),
});
export type TrackedGuest = z.infer<typeof trackedGuestSchema>;

const restartTotalsSchema = z.object({ restarted: z.number().int().nonnegative(), failed: z.number().int().nonnegative(), gone: z.number().int().nonnegative() });
/** Outcomes decided on this host so far, over all boots (`vtpm_guest_restarts_total`). */
export type RestartTotals = z.infer<typeof restartTotalsSchema>;
export const noRestartTotals = (): RestartTotals => ({ restarted: 0, failed: 0, gone: 0 });

export const watchSchema = z.object({
  version: z.literal(1),
  bootId: z.string().min(1),
  previousBootId: z.string().min(1),
  bootTime: z.number().nullable(),
  /** Unix ms the watch began (the agent saw the new boot). */
  startedAt: z.number(),
  /** Unix ms restart times are measured from: the boot, or the watch start for a boot-id change without a kernel boot after the snapshot. */
  since: z.number(),
  /** Unix ms after which a guest still down is failed. */
  deadlineAt: z.number(),
  snapshotTakenAt: z.number(),
  guests: z.array(trackedGuestSchema),
  /**
   * Saved in the same atomic write as the decisions that moved them, and carried into the next
   * boot's watch: after a crash the next agent shows every outcome, none twice.
   */
  totals: restartTotalsSchema.default(noRestartTotals),
});
export type Watch = z.infer<typeof watchSchema>;

export function snapshotFromInventory(inv: GuestInventory, bootId: string, bootTime: number | null, now: number): Snapshot {
  return {
    version: 1,
    bootId,
    bootTime,
    takenAt: now,
    guests: inv.guests
      .filter((g) => isActiveState(g.state))
      .map((g) => ({ uuid: g.uuid, name: g.name, instanceUuid: g.instanceUuid, secretMode: g.secretMode, encryptionSecret: g.encryptionSecret })),
  };
}

/** A new boot: every guest that ran at the last snapshot of the previous boot is pending. */
export function startWatch(snapshot: Snapshot, bootId: string, bootTime: number | null, now: number, deadlineSeconds: number, totals: RestartTotals = noRestartTotals()): Watch {
  const bootMs = bootTime === null ? null : bootTime * 1000;
  // A real reboot boots after the last snapshot; otherwise (boot id switched by hand, clock
  // trouble) measure from when the watch began.
  const since = bootMs !== null && bootMs > snapshot.takenAt && bootMs <= now ? bootMs : now;
  return {
    version: 1,
    bootId,
    previousBootId: snapshot.bootId,
    bootTime,
    startedAt: now,
    since,
    deadlineAt: since + deadlineSeconds * 1000,
    snapshotTakenAt: snapshot.takenAt,
    guests: snapshot.guests.map((g) => ({ ...g, status: 'pending', reason: null, detail: null, decidedAt: null, timeToRestartSeconds: null, down: false, attempted: false })),
    totals: { ...totals },
  };
}

export interface FailureContext {
  /** libvirt tried to start it and failed (state reason `failed`/`crashed`), versus never tried. */
  attempted: boolean;
}

export type Classifier = (tracked: TrackedGuest, current: VtpmGuest, ctx: FailureContext) => { reason: RestartFailureReason; detail: string };

export interface Transition {
  uuid: string;
  name: string;
  instanceUuid: string | null;
  outcome: 'restarted' | 'failed' | 'gone';
  reason: RestartFailureReason | null;
  timeToRestartSeconds: number | null;
}

/** Start attempted and failed: what `virsh domstate --reason` says after a failed start or crash. */
function startFailed(g: VtpmGuest): boolean {
  return (g.state === 'shutoff' && (g.stateReason === 'failed' || g.stateReason === 'crashed')) || g.state === 'crashed';
}

/**
 * One evaluation against a fresh inventory. Returns the new watch and the decisions made now;
 * a decided guest is never decided again, so nothing is counted twice (also across agent restarts,
 * since the watch is persisted).
 */
export function evaluateWatch(watch: Watch, inv: GuestInventory, now: number, classify: Classifier): { watch: Watch; transitions: Transition[]; changed: boolean } {
  const byUuid = new Map(inv.guests.map((g) => [g.uuid, g]));
  const transitions: Transition[] = [];
  let changed = false;
  const guests = watch.guests.map((t): TrackedGuest => {
    const current = byUuid.get(t.uuid);
    const running = current !== undefined && isActiveState(current.state);
    if (t.status === 'pending') {
      if (current === undefined) {
        changed = true;
        transitions.push({ uuid: t.uuid, name: t.name, instanceUuid: t.instanceUuid, outcome: 'gone', reason: null, timeToRestartSeconds: null });
        return { ...t, status: 'gone', decidedAt: now };
      }
      if (running) {
        const seconds = Math.max(0, (now - watch.since) / 1000);
        changed = true;
        transitions.push({ uuid: t.uuid, name: t.name, instanceUuid: t.instanceUuid, outcome: 'restarted', reason: null, timeToRestartSeconds: seconds });
        return { ...t, status: 'restarted', decidedAt: now, timeToRestartSeconds: seconds };
      }
      const attempted = startFailed(current);
      if (attempted || now >= watch.deadlineAt) {
        const { reason, detail } = classify(t, current, { attempted });
        changed = true;
        transitions.push({ uuid: t.uuid, name: t.name, instanceUuid: t.instanceUuid, outcome: 'failed', reason, timeToRestartSeconds: null });
        return { ...t, status: 'failed', reason, detail, decidedAt: now, down: true, attempted };
      }
      return t;
    }
    if (t.status === 'failed') {
      // Once failed, the outcome stays; only the "still down" series and its reason follow reality.
      if (current === undefined || running) {
        if (t.down) changed = true;
        return { ...t, down: false };
      }
      const attempted = t.attempted || startFailed(current);
      const { reason, detail } = classify(t, current, { attempted });
      if (reason !== t.reason || detail !== t.detail || !t.down || attempted !== t.attempted) changed = true;
      return { ...t, reason, detail, down: true, attempted };
    }
    return t;
  });
  const totals = { ...watch.totals };
  for (const t of transitions) totals[t.outcome] += 1;
  return { watch: { ...watch, guests, totals }, transitions, changed };
}

