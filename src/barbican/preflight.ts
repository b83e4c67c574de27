import type { GuestInventory, SecretMode } from '../guests/types.js';
import { z } from 'zod';
import { barbicanReasons, emptyReasonCounts, type BarbicanReason } from './reasons.js';
import { preflightResults, type PreflightResult, type SecretCheck } from './client.js';

/**
 * Which guests to check, when, and what the answers add up to. The HTTP part is injected
 * (`check`), so the scheduling, caching and counting are tested without a server.
 */

/** A vTPM guest whose restart needs Nova to read its secret from Barbican. */
export interface PreflightTarget {
  instanceUuid: string;
  secretUuid: string;
  mode: SecretMode;
  domainName: string;
}

export interface GuestCheck extends SecretCheck {
  instanceUuid: string;
  secretUuid: string;
  mode: SecretMode;
  checkedAt: number;
}

/** Modes whose restart fetches the key from Barbican: `host` keeps a persistent libvirt secret. */
const NEEDS_BARBICAN: ReadonlySet<SecretMode> = new Set(['user', 'deployment', 'unknown']);

export function preflightTargets(inventory: GuestInventory | undefined | null): PreflightTarget[] {
  if (!inventory) return [];
  const targets: PreflightTarget[] = [];
  for (const g of inventory.guests) {
    // Only Nova instances keep their vTPM key in Barbican; another domain's secret is libvirt's alone.
    if (g.instanceUuid === null || !g.encryptionSecret || !NEEDS_BARBICAN.has(g.secretMode)) continue;
    targets.push({ instanceUuid: g.instanceUuid, secretUuid: g.encryptionSecret, mode: g.secretMode, domainName: g.name });
  }
  return targets;
}

export interface PreflightOptions {
  ttlMs: number;
  concurrency: number;
  /** Spread the due checks over this many ms (0: all at once, limited by concurrency). */
  spreadMs: number;
  check: (target: PreflightTarget, signal: AbortSignal) => Promise<SecretCheck>;
  now?: () => number;
  /** Called after each check is counted (the extension saves the totals). */
  onCounted?: () => void;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The preflight's counters as saved under the state directory (they survive a crash). */
export const preflightTotalsSchema = z.object({
  version: z.literal(1),
  checksByResult: z.object(Object.fromEntries(preflightResults.map((r) => [r, z.number().int().nonnegative()])) as Record<PreflightResult, z.ZodNumber>),
  failures: z.object(Object.fromEntries(barbicanReasons.map((r) => [r, z.number().int().nonnegative()])) as Record<BarbicanReason, z.ZodNumber>),
});
export type PreflightTotals = z.infer<typeof preflightTotalsSchema>;

export class Preflight {
  /** Latest result per instance; only current targets are kept. */
  private readonly results = new Map<string, GuestCheck>();
  readonly checksByResult: Record<PreflightResult, number> = { ok: 0, forbidden: 0, not_found: 0, unauthenticated: 0, unavailable: 0 };
  readonly failures: Record<BarbicanReason, number> = emptyReasonCounts();
  lastRunAt: number | null = null;
  lastRunTargets = 0;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(private readonly options: PreflightOptions) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** Continues the counts of an earlier agent (loaded from the state file). */
  restore(saved: PreflightTotals): void {
    Object.assign(this.checksByResult, saved.checksByResult);
    Object.assign(this.failures, saved.failures);
  }

  totals(): PreflightTotals {
    return { version: 1, checksByResult: { ...this.checksByResult }, failures: { ...this.failures } };
  }

  current(): GuestCheck[] {
    return [...this.results.values()];
  }

  resultFor(instanceUuid: string): GuestCheck | undefined {
    return this.results.get(instanceUuid);
  }

  /** Whether a target needs a request now: never checked, secret changed, failed, or ok beyond the TTL. */
  private due(t: PreflightTarget, at: number): boolean {
    const prev = this.results.get(t.instanceUuid);
    if (!prev || prev.secretUuid !== t.secretUuid) return true;
    if (prev.result !== 'ok') return true;
    return at - prev.checkedAt >= this.options.ttlMs;
  }

  /** One round: checks the due targets (spread, capped) and forgets guests that are gone. */
  async run(targets: PreflightTarget[], signal: AbortSignal): Promise<GuestCheck[]> {
    const started = this.now();
    const wanted = new Set(targets.map((t) => t.instanceUuid));
    for (const id of [...this.results.keys()]) if (!wanted.has(id)) this.results.delete(id);
    const due = targets.filter((t) => this.due(t, started));
    const gap = due.length > 1 && this.options.spreadMs > 0 ? this.options.spreadMs / due.length : 0;
    let next = 0;
    const done: GuestCheck[] = [];
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= due.length || signal.aborted) return;
        const target = due[i]!;
        // Slot i starts no earlier than i·gap after the round began: an even spread, so a host
        // with many guests never sends a burst to Barbican.
        const wait = started + i * gap - this.now();
        if (wait > 0) await this.sleep(wait, signal);
        const check = await this.options.check(target, signal);
        const result: GuestCheck = { ...check, instanceUuid: target.instanceUuid, secretUuid: target.secretUuid, mode: target.mode, checkedAt: this.now() };
        this.results.set(target.instanceUuid, result);
        this.checksByResult[result.result] += 1;
        if (result.reason !== null) this.failures[result.reason] += 1;
        done.push(result);
        this.options.onCounted?.();
      }
    };
    const workers = Array.from({ length: Math.min(this.options.concurrency, due.length) }, () => worker());
    await Promise.all(workers);
    this.lastRunAt = this.now();
    this.lastRunTargets = targets.length;
    return done;
  }

  /** Current guests by result (for the gauge and the alert). */
  countsByResult(): Record<PreflightResult, number> {
    const counts = Object.fromEntries(preflightResults.map((r) => [r, 0])) as Record<PreflightResult, number>;
    for (const r of this.results.values()) counts[r.result] += 1;
    return counts;
  }
}
