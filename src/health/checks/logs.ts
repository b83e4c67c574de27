import path from 'node:path';
import { z } from 'zod';
import { readNewLines } from '../../logs/read-since.js';
import { pathInfo } from '../../host/fsinfo.js';
import { classifyLogLine, type LogKind, vmidOf } from '../parse/logline.js';
import { lineTime, manufactureTime } from '../parse/timestamp.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { guestsFromResults, guestStatePaths, type HealthGuest } from '../guests.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import type { StateStore } from '../../util/state-file.js';
import { GUEST_INVENTORY } from '../../guests/types.js';
import { healthProbe } from '../probe.js';
import { LIBVIRT_VIEW } from '../../host/libvirtd-location.js';

/** `baseline`: the first read of this file's backlog is not finished (larger than one run's budget). */
const cursorSchema = z.object({ ino: z.number(), offset: z.number(), baseline: z.boolean().optional() });
const eventSchema = z.object({ count: z.number(), lastAt: z.number(), lastLine: z.string() });
const guestSchema = z.object({
  name: z.string(),
  /** The guest has (had) a manufactured TPM: a new manufacture now is a reset. */
  hadTpm: z.boolean(),
  manufactures: z.number(),
  resets: z.number(),
  lastResetAt: z.number().nullable(),
  lastResetCause: z.string().nullable(),
  permallPresent: z.boolean(),
  maxPermallBytes: z.number(),
  /** A reset was already counted from the state file; the coming re-manufacture is the same event. */
  pendingReset: z.boolean(),
  /** Unix ms the guest was last in the inventory; records outlive a short undefine/define. */
  lastSeenAt: z.number(),
  events: z.record(z.string(), eventSchema),
});
const storeSchema = z.object({
  version: z.literal(1),
  files: z.record(z.string(), cursorSchema),
  guests: z.record(z.string(), guestSchema),
});
type Store = z.infer<typeof storeSchema>;
type GuestRecord = z.infer<typeof guestSchema>;

export const LOG_STORE_FILE = 'health/logs.json';
const STORE_NAME = 'health/logs';
const STORE_CONSEQUENCE = 'guest log positions and TPM reset counts are not kept (each run reads the logs as new)';

export interface LogScanInput {
  guests: HealthGuest[];
  swtpmStateDir: string;
  swtpmLogDir: string;
  qemuLogDir: string;
  agentStateDir: string;
  hostPath: HostPathResolver;
  maxBytesPerFile: number;
  windowSeconds: number;
  shrinkRatio: number;
  /**
   * How long the baseline of a guest that left the inventory is kept. An undefine + define with
   * the same UUID (Nova before the fix for bug 2118888 did that on hard reboot, erasing the TPM
   * on libvirt < 8.9) must still count as a reset when the guest comes back.
   */
  forgetAfterSeconds?: number;
  now?: number;
  /** The probe's abort signal: after a timeout the scan stops between files and saves nothing. */
  signal?: AbortSignal;
  /** The probe's state files (read-only in a one-shot check: read the store, never write or move it). */
  state: StateStore;
}

export interface GuestLogFact {
  name: string;
  uuid: string;
  resets: number;
  lastResetAt: number | null;
  lastResetCause: string | null;
  events: Partial<Record<LogKind, number>>;
}

export interface LogScanOutput {
  logs: CheckResult;
  reset: CheckResult;
  guests: GuestLogFact[];
  storeProblem: string | null;
}

function newRecord(name: string): GuestRecord {
  return { name, hadTpm: false, manufactures: 0, resets: 0, lastResetAt: null, lastResetCause: null, permallPresent: false, maxPermallBytes: 0, pendingReset: false, lastSeenAt: 0, events: {} };
}

/** `at` null: a reset found in a backlog read for the first time, whose time is unknown (counted, never "recent"). */
function countReset(rec: GuestRecord, cause: string, at: number | null): void {
  rec.resets++;
  rec.lastResetCause = cause;
  if (at !== null) rec.lastResetAt = Math.max(rec.lastResetAt ?? 0, at);
}

/** A manufacture block in a swtpm log: from "Starting vTPM manufacturing" to its end. */
interface Block {
  uuid: string | null;
  ok: boolean;
  /** When it happened: the time on its start line, else the read time (or null in a first read). */
  at: number | null;
}

/**
 * C10: reads what was appended to each vTPM guest's swtpm log and QEMU log since the last run,
 * attributes failure lines to the guest, and detects TPM resets: a manufacture for a guest that
 * already had a TPM, or a state file that vanished or shrank to a fresh one (libvirt re-creates
 * the TPM when the state dir is missing; swtpm silently starts a blank TPM when only the file is).
 */
export async function scanLogs(input: LogScanInput): Promise<LogScanOutput> {
  const now = input.now ?? Date.now();
  const { hostPath } = input;
  const storeFile = path.join(input.agentStateDir, LOG_STORE_FILE);
  const stored = input.state.file({ name: STORE_NAME, path: storeFile, version: 1, schema: storeSchema, consequence: STORE_CONSEQUENCE });
  const loaded = await stored.load(now);
  const store: Store = loaded.value ?? { version: 1, files: {}, guests: {} };
  const logFindings: Finding[] = [];
  const keptFiles: Store['files'] = {};
  const keptGuests: Store['guests'] = {};
  const resetThisRun = new Set<string>();
  const byUuid = new Map(input.guests.map((g) => [g.uuid, g]));

  const forgetBefore = now - (input.forgetAfterSeconds ?? 86_400) * 1000;
  for (const [uuid, rec] of Object.entries(store.guests)) {
    if (byUuid.has(uuid) || rec.lastSeenAt < forgetBefore) continue;
    keptGuests[uuid] = rec;
    // Keep its log positions too, or its old lines would be read again as new ones.
    for (const f of [path.join(input.swtpmLogDir, `${rec.name}-swtpm.log`), path.join(input.qemuLogDir, `${rec.name}.log`)]) {
      if (store.files[f]) keptFiles[f] = store.files[f];
    }
  }
  for (const g of input.guests) {
    const known = store.guests[g.uuid];
    const rec: GuestRecord = known ?? newRecord(g.name);
    rec.name = g.name;
    rec.lastSeenAt = now;
    keptGuests[g.uuid] = rec;
  }

  // `at` null: an old line of unknown time (first read of a file): counted, never shown as recent.
  const recordEvent = (rec: GuestRecord, kind: LogKind, line: string, at: number | null) => {
    const e = rec.events[kind] ?? { count: 0, lastAt: 0, lastLine: '' };
    e.count++;
    if (at !== null) e.lastAt = Math.max(e.lastAt, at);
    e.lastLine = line.length > 300 ? `${line.slice(0, 300)}…` : line;
    rec.events[kind] = e;
  };

  const finishBlock = (guest: HealthGuest, block: Block) => {
    // A manufacture logged for another domain of the same name (a re-created guest) is not this guest's.
    if (block.uuid && block.uuid !== guest.uuid) return;
    const rec = keptGuests[guest.uuid]!;
    if (rec.hadTpm) {
      if (rec.pendingReset) rec.pendingReset = false;
      else {
        countReset(rec, 'remanufactured', block.at);
        resetThisRun.add(guest.uuid);
      }
      // Until a manufacture succeeds there is no TPM: retries belong to the same reset.
      rec.hadTpm = false;
    }
    if (block.ok) {
      rec.manufactures++;
      rec.hadTpm = true;
    }
  };

  let unreadable: string | null = null;
  for (const g of input.guests) {
    const rec = keptGuests[g.uuid]!;
    for (const [dir, file, isSwtpm] of [
      [input.swtpmLogDir, `${g.name}-swtpm.log`, true],
      [input.qemuLogDir, `${g.name}.log`, false],
    ] as const) {
      input.signal?.throwIfAborted();
      const full = path.join(dir, file);
      let cursor: Store['files'][string] | undefined = store.files[full];
      // No cursor (first start, lost store, a guest new to the agent): the file's backlog is old.
      // Its lines count (the baseline) but only those that carry their own time can be recent.
      // A backlog over the byte budget stays baseline until its first read has caught up.
      const firstRead = cursor === undefined || cursor.baseline === true;
      const untimed = firstRead ? null : now;
      let block: Block | null = null;
      // One bounded read per file and run; a backlog larger than the budget is read over several runs.
      let res;
      try {
        res = await readNewLines(hostPath(full), cursor, input.maxBytesPerFile);
      } catch (err) {
        input.signal?.throwIfAborted();
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT') unreadable ??= `${full}: ${code ?? String(err)}`;
        res = null;
      }
      if (res) {
        cursor = firstRead && res.more ? { ...res.cursor, baseline: true } : res.cursor;
        for (const line of res.lines) {
          const c = classifyLogLine(line);
          if (isSwtpm) {
            const vmid = vmidOf(line);
            if (vmid && block) block.uuid = vmid.uuid;
            if (c?.kind === 'manufacture_start') {
              if (block) finishBlock(g, block);
              block = { uuid: null, ok: false, at: manufactureTime(line) ?? untimed };
              continue;
            }
            if (c?.kind === 'manufacture_ok' && block) block.ok = true;
            if (c?.kind === 'manufacture_end' && block) {
              finishBlock(g, block);
              block = null;
            }
          }
          // swtpm_setup's own lines carry no time: inside a manufacture block they have the block's.
          if (c && c.severity !== 'info') recordEvent(rec, c.kind, line, lineTime(line) ?? (block ? block.at : untimed));
        }
      }
      if (block) finishBlock(g, block);
      if (cursor) keptFiles[full] = cursor;
    }
  }

  // State file baseline: vanished, or shrunk to a fresh (unmanufactured) one.
  for (const g of input.guests) {
    input.signal?.throwIfAborted();
    const rec = keptGuests[g.uuid]!;
    const isNew = store.guests[g.uuid] === undefined;
    const info = await pathInfo(hostPath(guestStatePaths(input.swtpmStateDir, g).permall));
    const present = info.exists && info.isFile;
    const size = present ? info.size : 0;
    if (!isNew && !resetThisRun.has(g.uuid)) {
      if (rec.permallPresent && !present) {
        countReset(rec, 'state-vanished', now);
        rec.pendingReset = true;
        rec.maxPermallBytes = 0;
      } else if (present && !rec.pendingReset && rec.maxPermallBytes > 0 && size < rec.maxPermallBytes * input.shrinkRatio) {
        countReset(rec, 'state-shrunk', now);
        rec.maxPermallBytes = size;
      }
    }
    if (present) {
      rec.hadTpm = true;
      // The file is back (re-manufactured or blank): a later manufacture is a new event again.
      rec.pendingReset = false;
      rec.maxPermallBytes = resetThisRun.has(g.uuid) ? size : Math.max(rec.maxPermallBytes, size);
    }
    rec.permallPresent = present;
  }

  // Aborted (probe timeout): no partial state is saved; the next run starts from the old cursors.
  input.signal?.throwIfAborted();
  const next: Store = { version: 1, files: keptFiles, guests: keptGuests };
  let storeProblem = loaded.problem;
  // An existing store that could not be read is not overwritten with this run's fresh one.
  if (loaded.canSave) {
    try {
      await stored.save(next);
    } catch (err) {
      storeProblem = (err as Error).message;
    }
  }

  const resetFindings: Finding[] = [];
  const facts: GuestLogFact[] = [];
  const windowStart = now - input.windowSeconds * 1000;
  for (const g of input.guests) {
    const rec = keptGuests[g.uuid]!;
    const events: GuestLogFact['events'] = {};
    for (const [kind, e] of Object.entries(rec.events)) {
      events[kind as LogKind] = e.count;
      if (e.lastAt >= windowStart) {
        const c = classifyLogLine(e.lastLine.replace(/…$/, ''));
        logFindings.push(
          finding('VTPM_HEALTH_LOG_FAILURE', c?.severity === 'warn' ? 'warn' : 'fail', `Guest ${g.name}: ${e.count} × ${kind} in its ${kind.startsWith('qemu_') ? 'QEMU' : 'swtpm'} log, last: "${e.lastLine}"`, {
            subject: g.name,
            details: { uuid: g.uuid, kind, count: e.count, lastLine: e.lastLine, lastAt: e.lastAt },
          }),
        );
      }
    }
    if (rec.lastResetAt !== null && rec.lastResetAt >= windowStart) {
      resetFindings.push(
        finding('VTPM_HEALTH_TPM_RESET', 'fail', `The TPM of guest ${g.name} (${g.uuid}) was re-created (${rec.lastResetCause}); it is now a new chip to the guest. Resets seen: ${rec.resets}.`, {
          subject: g.name,
          details: { uuid: g.uuid, cause: rec.lastResetCause, resets: rec.resets, at: rec.lastResetAt },
        }),
      );
    }
    facts.push({ name: g.name, uuid: g.uuid, resets: rec.resets, lastResetAt: rec.lastResetAt, lastResetCause: rec.lastResetCause, events });
  }
  if (unreadable) logFindings.push(finding('VTPM_HEALTH_LOG_UNREADABLE', 'warn', `A guest log cannot be read (${unreadable}).`, { subject: unreadable.split(':')[0]! }));
  if (storeProblem) logFindings.push(finding('VTPM_HEALTH_LOG_UNREADABLE', 'warn', `Log cursors: ${storeProblem}.`, { subject: storeFile }));
  return {
    logs: checkResult('logs', logFindings, { guests: facts.length, swtpmLogDir: input.swtpmLogDir, qemuLogDir: input.qemuLogDir }),
    reset: checkResult('tpm-reset', resetFindings, { guests: facts.map((f) => ({ name: f.name, uuid: f.uuid, resets: f.resets, lastResetAt: f.lastResetAt })) }),
    guests: facts,
    storeProblem,
  };
}

export interface LogsProbeData extends HealthProbeData {
  guests: GuestLogFact[];
}

/** C10: failure lines in each vTPM guest's swtpm and QEMU logs, and TPM reset detection. */
export const healthLogsProbe = healthProbe<LogsProbeData>({
  name: 'health-logs',
  title: 'Health: guest logs and TPM resets',
  description: 'follows <domain>-swtpm.log and <domain>.log for the failure-modes §0 lines; counts TPM re-creations per guest',
  toggles: ['logs', 'tpm-reset'],
  after: [GUEST_INVENTORY],
  async run(ctx, results) {
    const h = ctx.config.health;
    const view = guestsFromResults(results);
    if (!view) {
      const gap = finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'warn', 'The guest inventory is not available, so guest logs cannot be attributed.');
      const checks: CheckResult[] = [];
      if (h.checks.logs) checks.push(checkResult('logs', [gap]));
      if (h.checks['tpm-reset']) checks.push(checkResult('tpm-reset', [gap]));
      return { checks, guests: [] };
    }
    const out = await scanLogs({
      guests: view.guests,
      swtpmStateDir: ctx.config.swtpm.stateDir,
      swtpmLogDir: h.swtpmLogDir,
      qemuLogDir: h.qemuLogDir,
      agentStateDir: ctx.config.stateDir,
      // Logs and state as libvirtd sees them (in Atmosphere /var/log/swtpm is inside its container).
      hostPath: await ctx.facts.get(LIBVIRT_VIEW),
      maxBytesPerFile: h.logMaxBytesPerRun,
      windowSeconds: h.logFailureWindowSeconds,
      shrinkRatio: h.stateShrinkRatio,
      signal: ctx.signal,
      state: ctx.stateFiles,
    });
    const checks: CheckResult[] = [];
    if (h.checks.logs) checks.push(out.logs);
    if (h.checks['tpm-reset']) checks.push(out.reset);
    return { checks, guests: out.guests };
  },
});
