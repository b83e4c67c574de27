/**
 * Splay: a stable per-host offset within a schedule's interval, so a fleet of agents on the same
 * wall-clock cron does not call Keystone, Placement and Barbican in the same second. The offset
 * comes from a hash of the host's identity, so it is the same after every restart (a host keeps
 * its slot) and the fleet spreads evenly over the window.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';

/** A number in [0, 1) derived from `identity` alone (sha256, first 48 bits). */
export function splayFraction(identity: string): number {
  const digest = createHash('sha256').update(identity, 'utf8').digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * The delay after each scheduled tick: the host's fraction of min(splay, interval). 0 when splay
 * is 0 (disabled) or the interval is unknown. Always below the interval, so a run ends up before
 * the next tick, never skipping one.
 */
export function splayOffsetMs(identity: string, intervalMs: number | null, splaySeconds: number): number {
  if (splaySeconds <= 0 || intervalMs === null || !(intervalMs > 0)) return 0;
  const windowMs = Math.min(splaySeconds * 1000, intervalMs);
  return Math.floor(splayFraction(identity) * windowMs);
}

/**
 * The shortest gap between a schedule's next runs (a cron expression can be irregular, e.g.
 * `0 9,17 * * *`; the shortest gap keeps the delay below every interval). null when it cannot tell.
 */
export function scheduleIntervalMs(task: { getNextRuns(count: number): Date[] }): number | null {
  const runs = task.getNextRuns(6).map((d) => d.getTime());
  let shortest = Infinity;
  for (let i = 1; i < runs.length; i++) shortest = Math.min(shortest, runs[i]! - runs[i - 1]!);
  return Number.isFinite(shortest) && shortest > 0 ? shortest : null;
}

/**
 * The identity the offset hashes: a fixed Placement provider or Nova host name from the
 * configuration when set (what the rest of the cloud knows the host by), else the OS host name.
 */
export function splayIdentity(identity: { providerName: string | null; novaHost: string | null }, hostname: string = os.hostname()): string {
  return identity.providerName ?? identity.novaHost ?? hostname;
}

/**
 * For loops on a plain interval (not cron): the delay until the next wall-clock slot of this
 * host, i.e. the next time t with (t - offset) a multiple of the interval. Slots are aligned to
 * the epoch, not to the agent's start, so a fleet restarted at once (a DaemonSet rollout) still
 * keeps each host in its own slot.
 */
export function delayToNextSlotMs(nowMs: number, intervalMs: number, offsetMs: number): number {
  const d = (((offsetMs - nowMs) % intervalMs) + intervalMs) % intervalMs;
  return d === 0 ? intervalMs : d;
}

/** Waits `ms` (resolves at once for 0); an abort ends the wait early and resolves false. */
export function splayWait(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(!signal?.aborted);
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
