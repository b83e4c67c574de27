import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathInfo } from '../../host/fsinfo.js';
import { devMajorMinor, parseProcLocks } from '../parse/proc.js';
import { swtpmProcesses } from '../proc-read.js';
import { PROCESSES, type ProcInfo } from '../../host/processes.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { guestsFromResults, type HealthGuest } from '../guests.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { GUEST_INVENTORY } from '../../guests/types.js';
import { healthProbe } from '../probe.js';

export interface OrphansInput {
  guests: HealthGuest[];
  stateDir: string;
  runDir: string;
  processes: ProcInfo[];
  hostPath: HostPathResolver;
}

export interface OrphanCounts {
  processes: number;
  lockHolders: number;
  stalePidfiles: number;
  staleSockets: number;
}

/** The guest UUID of a state dir under libvirt's swtpm storage (`<stateDir>/<uuid>/tpm2`), else null. */
export function uuidOfStateDir(stateDir: string, dir: string): string | null {
  const base = path.resolve(stateDir);
  const rel = path.relative(base, path.resolve(dir));
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return rel.split(path.sep)[0] ?? null;
}

/**
 * C6: swtpm processes and lock holders on libvirt's TPM state without a running guest (they make
 * the next start fail with "TPM result for CMD_INIT: 0x9"), and pid/socket files left behind.
 * swtpm instances outside libvirt's state dir (other tools, the agent's own checks) are ignored.
 */
export async function checkOrphans(input: OrphansInput): Promise<CheckResult & { counts: OrphanCounts }> {
  const { hostPath } = input;
  const findings: Finding[] = [];
  const counts: OrphanCounts = { processes: 0, lockHolders: 0, stalePidfiles: 0, staleSockets: 0 };
  const byUuid = new Map(input.guests.map((g) => [g.uuid, g]));
  // The round's process list already has every process: no /proc re-read per pid.
  const byPid = new Map(input.processes.map((p) => [p.pid, p]));
  /** Could not look (not "nothing there"): unknown, naming what and why. */
  const cannotRead = (what: string, err: unknown) =>
    findings.push(finding('VTPM_HEALTH_ORPHANS_UNREADABLE_BY_AGENT', 'unknown', `The agent cannot read ${what} (${(err as NodeJS.ErrnoException)?.code ?? String(err)}): orphans there are unknown.`, { subject: what }));
  const missing = (err: unknown) => (err as NodeJS.ErrnoException)?.code === 'ENOENT';
  const swtpms = swtpmProcesses(input.processes);
  const liveCtrl = new Set(swtpms.map((s) => s.args.ctrlPath).filter((p): p is string => p !== null));

  for (const s of swtpms) {
    if (!s.args.stateDir) continue;
    const uuid = uuidOfStateDir(input.stateDir, s.args.stateDir);
    if (!uuid) continue;
    const guest = byUuid.get(uuid);
    if (!guest || !guest.running) {
      counts.processes++;
      findings.push(
        finding('VTPM_HEALTH_ORPHAN_SWTPM', 'fail', `swtpm pid ${s.pid} serves the TPM state ${s.args.stateDir} of ${guest ? `guest ${guest.name}, which is not running` : `UUID ${uuid}, which is no defined guest`}; it holds the state lock.`, {
          subject: guest?.name ?? uuid,
          details: { pid: s.pid, uuid, stateDir: s.args.stateDir, ctrl: s.args.ctrlPath },
        }),
      );
    } else if (s.args.ctrlPath) {
      const ctrl = await pathInfo(hostPath(s.args.ctrlPath));
      if (!ctrl.exists && ctrl.error !== 'ENOENT') cannotRead(s.args.ctrlPath, { code: ctrl.error });
      else if (!ctrl.exists) {
        findings.push(
          finding('VTPM_HEALTH_ORPHAN_NO_CTRL_SOCKET', 'warn', `swtpm pid ${s.pid} of guest ${guest.name} lost its control socket ${s.args.ctrlPath}; libvirt cannot stop it, and it will block the next start.`, {
            subject: guest.name,
            details: { pid: s.pid, uuid },
          }),
        );
      }
    }
  }

  // Lock holders: WRITE locks on `<stateDir>/<uuid>/tpm*/.lock` whose guest is not running.
  const locksText = await readFile(hostPath('/proc/locks'), 'utf8').catch((err: unknown) => (cannotRead('/proc/locks', err), ''));
  const locks = parseProcLocks(locksText);
  let uuidDirs: string[] = [];
  try {
    uuidDirs = await readdir(hostPath(input.stateDir));
  } catch (err) {
    if (!missing(err)) cannotRead(input.stateDir, err);
  }
  const alreadyReported = new Set(findings.map((f) => f.details?.pid));
  for (const uuid of uuidDirs) {
    for (const sub of ['tpm2', 'tpm1.2']) {
      const lockPath = path.join(input.stateDir, uuid, sub, '.lock');
      const info = await pathInfo(hostPath(lockPath));
      if (!info.exists && info.error !== 'ENOENT' && info.error !== 'ENOTDIR') cannotRead(lockPath, { code: info.error });
      if (!info.exists) continue;
      const { major, minor } = devMajorMinor(info.dev);
      const holders = locks.filter((l) => l.ino === info.ino && l.major === major && l.minor === minor && l.access === 'WRITE');
      const guest = byUuid.get(uuid);
      if (guest?.running) continue;
      for (const h of holders) {
        counts.lockHolders++;
        const proc = byPid.get(h.pid);
        findings.push(
          finding('VTPM_HEALTH_ORPHAN_LOCK_HOLDER', 'fail', `Process ${h.pid} (${proc?.comm ?? 'unknown'}) holds the TPM state lock ${lockPath} of ${guest ? `guest ${guest.name}, which is not running` : `UUID ${uuid}, which is no defined guest`}: starting it fails with "SWTPM_NVRAM_Lock_Dir: Could not lock access to lockfile".`, {
            subject: guest?.name ?? uuid,
            details: { pid: h.pid, comm: proc?.comm ?? null, lock: lockPath, uuid, alsoOrphanProcess: alreadyReported.has(h.pid) },
          }),
        );
      }
    }
  }

  // libvirt's pid and socket files: `<id>-<short name>-swtpm.{pid,sock}`.
  let runEntries: string[] = [];
  try {
    runEntries = await readdir(hostPath(input.runDir));
  } catch (err) {
    if (!missing(err)) cannotRead(input.runDir, err);
  }
  for (const e of runEntries) {
    const full = path.join(input.runDir, e);
    if (e.endsWith('-swtpm.pid')) {
      const text = await readFile(hostPath(full), 'utf8').catch(() => '');
      const pid = Number.parseInt(text.trim(), 10);
      const proc = Number.isInteger(pid) && pid > 0 ? byPid.get(pid) : undefined;
      if (!proc || proc.argv[0]?.split('/').pop() !== 'swtpm') {
        counts.stalePidfiles++;
        findings.push(finding('VTPM_HEALTH_STALE_PIDFILE', 'warn', `${full} names ${Number.isInteger(pid) ? `pid ${pid}` : 'no pid'}, but no such swtpm is running.`, { subject: full, details: { pid: Number.isInteger(pid) ? pid : null } }));
      }
    } else if (e.endsWith('-swtpm.sock') && !liveCtrl.has(full)) {
      counts.staleSockets++;
      findings.push(finding('VTPM_HEALTH_STALE_SOCKET', 'warn', `${full} is not served by any running swtpm.`, { subject: full }));
    }
  }
  return { ...checkResult('orphans', findings, { counts, swtpmProcesses: swtpms.length }), counts };
}

export interface OrphansProbeData extends HealthProbeData {
  counts: OrphanCounts | null;
}

/** C6: swtpm processes and state-lock holders without a running guest; stale pid and socket files. */
export const healthOrphansProbe = healthProbe<OrphansProbeData>({
  name: 'health-orphans',
  title: 'Health: orphaned swtpm',
  description: 'swtpm processes and /proc/locks holders on TPM state of guests that are not running; stale *-swtpm.pid/.sock',
  toggles: ['orphans'],
  after: [GUEST_INVENTORY],
  async run(ctx, results) {
    const view = guestsFromResults(results);
    if (!view) {
      // Without the guest list every swtpm would look orphaned: report the gap instead.
      return { checks: [checkResult('orphans', [finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'warn', 'The guest inventory is not available, so orphaned swtpm processes cannot be told apart.')])], counts: null };
    }
    const processes = await ctx.facts.get(PROCESSES);
    if (processes.length === 0) {
      // A readable /proc lists at least this agent: an empty list means it could not look.
      const proc = ctx.hostPath('/proc');
      return { checks: [checkResult('orphans', [finding('VTPM_HEALTH_PROC_UNREADABLE', 'unknown', `${proc} lists no processes, so orphaned swtpm processes cannot be checked.`)])], counts: null };
    }
    const out = await checkOrphans({
      guests: view.guests,
      stateDir: ctx.config.swtpm.stateDir,
      runDir: ctx.config.health.swtpmRunDir,
      processes,
      hostPath: ctx.hostPath,
    });
    const { counts, ...check } = out;
    return { checks: [check], counts };
  },
});
