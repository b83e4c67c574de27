import { barbicanReasons, emptyReasonCounts, isBarbicanReason, type BarbicanReason } from '../barbican/reasons.js';
import type { Classification, ParsedLine } from './classify.js';

/**
 * Turns classified lines into counted failures. One failure shows up on several lines: castellan
 * logs it (request id, no instance), Nova logs it again (request id and instance), and the
 * traceback repeats it (instance, no request id). Lines are folded into one incident when they
 * share the reason and a key (instance, request id, or — for lines with neither — the pid) within
 * a window of log time. A later Nova line naming the instance attributes an earlier castellan
 * incident to it.
 *
 * Everything here is deterministic in the sequence of lines and serialisable, and it is saved
 * together with the read position: replaying the lines after a crash gives the same counts as
 * never crashing, which is what makes counting exactly-once.
 */

export interface Incident {
  id: number;
  reason: BarbicanReason;
  keys: string[];
  instanceUuid: string | null;
  firstTs: number;
  lastTs: number;
  /**
   * Nova logged the guest's restart as failed: the incident is complete. In init_host every
   * guest shares one request id, so a later castellan line with that id is the next guest's
   * failure, not this one again — a closed incident only matches by instance.
   */
  closed?: boolean;
}

export interface InstanceFailure {
  instanceUuid: string;
  reason: BarbicanReason;
  /** Log time (unix ms) of the latest line attributed to it. */
  at: number;
  /** Incidents attributed to this instance. */
  count: number;
  /** Whether Nova also logged that the restart of this instance failed. */
  restartFailed: boolean;
}

export interface IncidentState {
  version: 1;
  nextId: number;
  totals: Record<BarbicanReason, number>;
  open: Incident[];
  instances: InstanceFailure[];
  /** Latest log time seen, so lines without a timestamp still age incidents. */
  clock: number;
  /** Log time of the latest counted failure (null: none yet). */
  lastCountedAt: number | null;
}

export interface Observation {
  /** A new incident was counted. */
  counted: Incident | null;
  /** An instance got (or changed) its Barbican reason. */
  attributed: InstanceFailure | null;
  /** Nova logged a failed restart; reason null when no Barbican incident explains it. */
  restartFailure: { instanceUuid: string; reason: BarbicanReason | null } | null;
}

export interface IncidentOptions {
  windowMs: number;
  /** Bounds memory and the state file. */
  maxOpen?: number;
  maxInstances?: number;
}

export function emptyIncidentState(): IncidentState {
  return { version: 1, nextId: 1, totals: emptyReasonCounts(), open: [], instances: [], clock: 0, lastCountedAt: null };
}

/** Validates a persisted state (it may be from an older agent or damaged); null when unusable. */
export function parseIncidentState(raw: unknown): IncidentState | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Partial<IncidentState>;
  if (r.version !== 1 || typeof r.nextId !== 'number' || typeof r.clock !== 'number') return null;
  if (!Array.isArray(r.open) || !Array.isArray(r.instances) || typeof r.totals !== 'object' || r.totals === null) return null;
  const totals = emptyReasonCounts();
  for (const reason of barbicanReasons) {
    const v = (r.totals as Record<string, unknown>)[reason];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) totals[reason] = v;
  }
  const open = r.open.filter(
    (i): i is Incident => typeof i === 'object' && i !== null && isBarbicanReason(i.reason) && Array.isArray(i.keys) && typeof i.lastTs === 'number',
  );
  const instances = r.instances.filter(
    (i): i is InstanceFailure => typeof i === 'object' && i !== null && typeof i.instanceUuid === 'string' && isBarbicanReason(i.reason),
  );
  const lastCountedAt = typeof r.lastCountedAt === 'number' ? r.lastCountedAt : null;
  return { version: 1, nextId: r.nextId, totals, open, instances, clock: r.clock, lastCountedAt };
}

export class IncidentTracker {
  private readonly windowMs: number;
  private readonly maxOpen: number;
  private readonly maxInstances: number;

  constructor(
    private state: IncidentState,
    options: IncidentOptions,
  ) {
    this.windowMs = options.windowMs;
    this.maxOpen = options.maxOpen ?? 512;
    this.maxInstances = options.maxInstances ?? 256;
  }

  snapshot(): IncidentState {
    // Copies, so a snapshot being written is not changed under the writer.
    return structuredClone(this.state);
  }

  get totals(): Readonly<Record<BarbicanReason, number>> {
    return this.state.totals;
  }

  get lastCountedAt(): number | null {
    return this.state.lastCountedAt;
  }

  instances(): readonly InstanceFailure[] {
    return this.state.instances;
  }

  instance(uuid: string): InstanceFailure | undefined {
    return this.state.instances.find((i) => i.instanceUuid === uuid);
  }

  observe(line: ParsedLine, c: Classification): Observation {
    const result: Observation = { counted: null, attributed: null, restartFailure: null };
    if (c.reason === null && c.marker === null) return result;
    const ts = line.ts ?? this.state.clock;
    if (ts > this.state.clock) this.state.clock = ts;
    this.expire();
    const keys = lineKeys(line);
    // The pid is stored on every incident so bare traceback lines of the same process can join it.
    const ownKeys = line.pid !== null && !keys.includes(`p:${line.pid}`) ? [...keys, `p:${line.pid}`] : keys;

    if (c.reason !== null) {
      let incident = this.find(c.reason, keys);
      if (incident === null) {
        incident = { id: this.state.nextId++, reason: c.reason, keys: [...ownKeys], instanceUuid: null, firstTs: ts, lastTs: ts };
        this.state.open.push(incident);
        if (this.state.open.length > this.maxOpen) this.state.open.splice(0, this.state.open.length - this.maxOpen);
        this.state.totals[c.reason] += 1;
        this.state.lastCountedAt = ts;
        result.counted = incident;
      } else {
        incident.lastTs = Math.max(incident.lastTs, ts);
        for (const k of ownKeys) if (!incident.keys.includes(k)) incident.keys.push(k);
      }
      if (line.instanceUuid !== null && incident.instanceUuid === null) {
        incident.instanceUuid = line.instanceUuid;
        result.attributed = this.attribute(line.instanceUuid, incident.reason, ts, false);
      } else if (line.instanceUuid !== null && incident.instanceUuid === line.instanceUuid) {
        this.touch(line.instanceUuid, ts);
      }
    }

    if (c.marker === 'restart-failed' && line.instanceUuid !== null) {
      // Nova's "Failed to resume instance" has no cause in it; the cause is the incident logged
      // just before under the same request id (or already tied to the instance).
      const explained = c.reason !== null ? this.find(c.reason, keys) : this.findAny(keys);
      if (explained !== null) {
        if (explained.instanceUuid === null) explained.instanceUuid = line.instanceUuid;
        if (!explained.keys.includes(`i:${line.instanceUuid}`)) explained.keys.push(`i:${line.instanceUuid}`);
        explained.closed = true;
      }
      const reason = explained?.reason ?? null;
      result.restartFailure = { instanceUuid: line.instanceUuid, reason };
      if (reason !== null) result.attributed = this.attribute(line.instanceUuid, reason, ts, true);
    }
    return result;
  }

  private find(reason: BarbicanReason, keys: readonly string[]): Incident | null {
    for (let i = this.state.open.length - 1; i >= 0; i -= 1) {
      const incident = this.state.open[i]!;
      if (incident.reason === reason && keys.some((k) => matches(incident, k))) return incident;
    }
    return null;
  }

  private findAny(keys: readonly string[]): Incident | null {
    for (let i = this.state.open.length - 1; i >= 0; i -= 1) {
      const incident = this.state.open[i]!;
      if (incident.closed) continue;
      if (keys.some((k) => !k.startsWith('p:') && incident.keys.includes(k))) return incident;
    }
    return null;
  }

  private expire(): void {
    const horizon = this.state.clock - this.windowMs;
    if (this.state.open.length && this.state.open[0]!.lastTs < horizon) {
      this.state.open = this.state.open.filter((i) => i.lastTs >= horizon);
    }
  }

  private touch(uuid: string, ts: number): void {
    const entry = this.instance(uuid);
    if (entry) entry.at = Math.max(entry.at, ts);
  }

  private attribute(uuid: string, reason: BarbicanReason, ts: number, restartFailed: boolean): InstanceFailure {
    let entry = this.instance(uuid);
    if (!entry) {
      entry = { instanceUuid: uuid, reason, at: ts, count: 0, restartFailed: false };
      this.state.instances.push(entry);
      if (this.state.instances.length > this.maxInstances) {
        this.state.instances.sort((a, b) => b.at - a.at);
        this.state.instances.length = this.maxInstances;
      }
    }
    if (!restartFailed) entry.count += 1;
    entry.reason = reason;
    entry.at = Math.max(entry.at, ts);
    entry.restartFailed ||= restartFailed;
    return { ...entry };
  }
}

function matches(incident: Incident, key: string): boolean {
  if (incident.closed && !key.startsWith('i:')) return false;
  return incident.keys.includes(key);
}

/**
 * Keys a line can share with other lines of the same failure. The pid only joins lines that
 * have neither a request id nor an instance (bare traceback lines), else two guests failing at
 * once in one nova-compute process would fold into one incident.
 */
function lineKeys(line: ParsedLine): string[] {
  const keys: string[] = [];
  if (line.instanceUuid !== null) keys.push(`i:${line.instanceUuid}`);
  if (line.requestId !== null) keys.push(`r:${line.requestId}`);
  if (keys.length === 0) keys.push(line.pid !== null ? `p:${line.pid}` : 'p:?');
  return keys;
}
