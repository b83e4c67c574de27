import type { Logger } from 'pino';
import { classify, parseLine, type ParseHints } from './classify.js';
import { emptyIncidentState, IncidentTracker, type Incident, type IncidentState, type InstanceFailure } from './incidents.js';
import type { BarbicanReason } from '../barbican/reasons.js';

export interface CountingEvents {
  incident(i: Incident): void;
  attribution(a: InstanceFailure): void;
  restartFailure(r: { instanceUuid: string; reason: BarbicanReason | null }): void;
  /** The counts changed (they are saved with the positions). */
  changed(): void;
}

/**
 * The counting, whatever the source: each decoded line is classified; Barbican failures are
 * counted once per incident and attributed to their instance.
 */
export class LogCounting {
  tracker: IncidentTracker;

  constructor(
    private readonly windowMs: number,
    private readonly log: Logger,
    private readonly events: CountingEvents,
    saved: IncidentState = emptyIncidentState(),
  ) {
    this.tracker = new IncidentTracker(saved, { windowMs });
  }

  /** Continues from saved counts (a restart). */
  restore(saved: IncidentState | null): void {
    this.tracker = new IncidentTracker(saved ?? emptyIncidentState(), { windowMs: this.windowMs });
  }

  /** One decoded line, from any source. */
  line(text: string, hints: ParseHints): void {
    const line = parseLine(text, hints);
    const c = classify(line);
    if (c.reason === null && c.marker === null) return;
    const o = this.tracker.observe(line, c);
    if (o.counted) {
      this.events.changed();
      this.log.info({ reason: o.counted.reason, instanceUuid: line.instanceUuid }, 'Barbican failure in nova-compute log');
      this.events.incident(o.counted);
    }
    if (o.attributed) this.events.attribution(o.attributed);
    if (o.restartFailure) {
      this.events.changed();
      this.events.restartFailure(o.restartFailure);
    }
  }
}
