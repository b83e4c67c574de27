/** Writing nova-compute-like log lines for the log follower tests (file, CRI, journald). */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { novaLogConfigSchema, type NovaLogConfig } from '../../src/logs/config.js';
import { NovaLogFollower } from '../../src/logs/follower.js';
import { hostPathResolver } from '../../src/util/hostpath.js';

const BASE = Date.parse('2026-11-28T00:00:00Z');
/** Failures are spread 200 s apart in log time, beyond the 120 s incident window: a line read twice would count twice. */
const SPACING_MS = 200_000;

function stamp(ms: number): string {
  const d = new Date(ms);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 23)}`;
}

/** Failure number i: a castellan Forbidden line with its own request id. */
export function failureLine(i: number): string {
  return `${stamp(BASE + i * SPACING_MS)} 4242 ERROR castellan.key_manager.barbican_key_manager [None req-${randomUUID()} - - - - - -] Error retrieving object: Forbidden: Secret payload retrieval attempt not allowed - please review your user/project privileges`;
}

/** An INFO/DEBUG line that must never count. */
export function fillerLine(i: number): string {
  return i % 2
    ? `${stamp(BASE + i * SPACING_MS + 1)} 4242 DEBUG oslo_service.service [None req-${randomUUID()} - - - - - -] barbican.auth_endpoint = http://keystone.example/v3 log_opt_values`
    : `${stamp(BASE + i * SPACING_MS + 2)} 4242 INFO nova.compute.resource_tracker [None req-${randomUUID()} - - - - - -] Final resource view: name=compute-01.example.org phys_ram=257000MB used_ram=4096MB`;
}

/** Numbered failures with fillers between them: `text` and how many failures it holds. */
export class LineBook {
  private next = 0;
  written = 0;
  batch(failures: number, fillersEach = 3): string {
    let out = '';
    for (let k = 0; k < failures; k += 1) {
      const i = this.next++;
      for (let f = 0; f < fillersEach; f += 1) out += `${fillerLine(i)}\n`;
      out += `${failureLine(i)}\n`;
    }
    this.written += failures;
    return out;
  }
}

export function followerConfig(overrides: Partial<NovaLogConfig>): NovaLogConfig {
  return novaLogConfigSchema.parse({ startAt: 'beginning', pollIntervalSeconds: 60, ...overrides });
}

export function makeFollower(config: NovaLogConfig, stateFile: string, hostRoot = '/'): NovaLogFollower {
  return new NovaLogFollower({ config, stateFile, hostPath: hostPathResolver(hostRoot), log: pino({ level: 'silent' }), saveIntervalMs: 0 });
}
