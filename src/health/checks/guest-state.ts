import { statfs } from 'node:fs/promises';
import { healthBinariesProbe } from './binaries.js';
import { canAccess } from '../access.js';
import { octal, parentsOf, pathInfo, type PathInfo } from '../../host/fsinfo.js';
import { type Accounts, groupName, userName } from '../../host/accounts.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type CheckStatus, type Finding, worst, type HealthProbeData } from '../types.js';
import { guestsFromResults, guestStatePaths, type HealthGuest } from '../guests.js';
import { SWTPM_PRINCIPAL, type Principal } from '../../host/swtpm-principal.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { GUEST_INVENTORY } from '../../guests/types.js';
import { healthProbe } from '../probe.js';

/** statfs magic numbers of network/cluster filesystems (linux/magic.h and the FS sources). */
const SHARED_FS: Record<number, string> = {
  0x6969: 'nfs',
  0x00c36400: 'ceph',
  0x65735546: 'fuse',
  0x517b: 'smb',
  0xff534d42: 'cifs',
  0xfe534d42: 'smb2',
  0x7461636f: 'ocfs2',
  0x01161970: 'gfs2',
  0x47504653: 'gpfs',
};

export interface GuestStateInput {
  guests: HealthGuest[];
  stateDir: string;
  principal: Principal;
  accounts: Accounts;
  hostPath: HostPathResolver;
  minFreeBytes: number;
  /** `swtpm socket --print-capabilities` features when known (for cmdarg-migration on shared storage). */
  socketFeatures: string[] | null;
  /** libvirt's swtpm log dir: a guest with no `<name>-swtpm.log` has never had a TPM started. */
  swtpmLogDir: string;
}

export interface GuestStateFact {
  name: string;
  uuid: string;
  status: CheckStatus;
  permallBytes: number | null;
}

/**
 * C5: for each vTPM guest, the state libvirt hands to swtpm: present and non-empty, owned by the
 * swtpm principal, parents searchable, no foreign `.lock`; plus the filesystem it lives on.
 */
export async function checkGuestState(input: GuestStateInput): Promise<CheckResult> {
  const { principal: p, accounts, hostPath } = input;
  const findings: Finding[] = [];
  const perGuest: GuestStateFact[] = [];
  const who = `${p.user}:${p.group}`;
  const own = (i: { uid: number; gid: number; mode: number }) => `${userName(accounts, i.uid)}:${groupName(accounts, i.gid)} ${octal(i.mode)}`;

  for (const g of input.guests) {
    const paths = guestStatePaths(input.stateDir, g);
    const gf: Finding[] = [];
    const subject = g.name;
    // The agent could not look (EACCES, ELOOP…): unknown with the reason, never "missing" or pass.
    const cannotLook = (info: PathInfo, what: string): boolean => {
      if (info.exists || info.error === 'ENOENT' || info.error === 'ENOTDIR') return false;
      gf.push(finding('VTPM_HEALTH_STATE_UNREADABLE_BY_AGENT', 'unknown', `The agent cannot look at ${what} (${info.error}) as uid ${process.getuid?.() ?? '?'}: the TPM state of guest ${g.name} is unknown there.`, { subject, details: { uuid: g.uuid, path: what, error: info.error } }));
      return true;
    };
    for (const dir of [...parentsOf(paths.uuidDir), paths.uuidDir]) {
      const info = await pathInfo(hostPath(dir));
      if (cannotLook(info, dir)) break;
      if (info.exists && !canAccess(info, p, ['x'])) {
        gf.push(finding('VTPM_HEALTH_STATE_NOT_TRAVERSABLE', 'fail', `${p.user} cannot search ${dir} (${own(info)}), so swtpm cannot reach the TPM state of guest ${g.name}.`, { subject, details: { uuid: g.uuid, path: dir } }));
        break;
      }
    }
    const dirInfo = await pathInfo(hostPath(paths.dir));
    let permallBytes: number | null = null;
    const swtpmLog = `${input.swtpmLogDir}/${g.name}-swtpm.log`;
    const logInfo = !dirInfo.exists && !g.running ? await pathInfo(hostPath(swtpmLog)) : null;
    const neverStarted = logInfo !== null && !logInfo.exists;
    if (cannotLook(dirInfo, paths.dir) || (neverStarted && cannotLook(logInfo, swtpmLog))) {
      // Said above.
    } else if (neverStarted) {
      // Defined but never started: libvirt manufactures its first TPM on the first start.
    } else if (!dirInfo.exists) {
      gf.push(
        finding('VTPM_HEALTH_STATE_MISSING', g.running ? 'fail' : 'warn', g.running
          ? `Guest ${g.name} is running but its TPM state directory ${paths.dir} is gone; its TPM state will be lost when it stops.`
          : `Guest ${g.name} has no TPM state directory ${paths.dir}; its next start creates a brand-new TPM (a reset, if it ever had one).`, { subject, details: { uuid: g.uuid, path: paths.dir } }),
      );
    } else {
      if (dirInfo.uid !== p.uid || !canAccess(dirInfo, p, ['r', 'w', 'x'])) {
        gf.push(
          finding('VTPM_HEALTH_STATE_WRONG_OWNER', 'fail', `The TPM state directory ${paths.dir} of guest ${g.name} is ${own(dirInfo)}, not owned by the swtpm principal ${who}: swtpm logs "User ${p.user} cannot access directory".`, {
            subject,
            details: { uuid: g.uuid, path: paths.dir, owner: userName(accounts, dirInfo.uid), mode: octal(dirInfo.mode) },
          }),
        );
      }
      const permall = await pathInfo(hostPath(paths.permall));
      if (cannotLook(permall, paths.permall)) {
        // Said above: unreadable is not missing.
      } else if (!permall.exists) {
        gf.push(
          finding('VTPM_HEALTH_STATE_MISSING', g.running ? 'fail' : 'warn', `Guest ${g.name} has no ${paths.permall}; swtpm will silently start it with a blank TPM (no EK, empty NV): a reset.`, { subject, details: { uuid: g.uuid, path: paths.permall } }),
        );
      } else {
        permallBytes = permall.size;
        if (permall.size === 0) {
          gf.push(finding('VTPM_HEALTH_STATE_EMPTY', 'fail', `The TPM state file ${paths.permall} of guest ${g.name} is empty (0 bytes); swtpm cannot load it.`, { subject, details: { uuid: g.uuid, path: paths.permall } }));
        }
        if (permall.uid !== p.uid || !canAccess(permall, p, ['r', 'w'])) {
          gf.push(
            finding('VTPM_HEALTH_STATE_WRONG_OWNER', 'fail', `The TPM state file ${paths.permall} of guest ${g.name} is ${own(permall)}; the swtpm principal ${who} cannot use it.`, {
              subject,
              details: { uuid: g.uuid, path: paths.permall, owner: userName(accounts, permall.uid), mode: octal(permall.mode) },
            }),
          );
        }
      }
      const lock = await pathInfo(hostPath(paths.lock));
      cannotLook(lock, paths.lock);
      if (lock.exists && lock.uid !== p.uid && p.uid !== 0) {
        gf.push(
          finding('VTPM_HEALTH_STATE_LOCK_WRONG_OWNER', 'fail', `${paths.lock} of guest ${g.name} is ${own(lock)}; swtpm running as ${p.user} fails with "SWTPM_NVRAM_Lock_Dir: Could not open lockfile: Permission denied".`, {
            subject,
            details: { uuid: g.uuid, path: paths.lock, owner: userName(accounts, lock.uid) },
          }),
        );
      }
    }
    findings.push(...gf);
    perGuest.push({ name: g.name, uuid: g.uuid, status: worst(gf.map((f) => f.status)), permallBytes });
  }

  const fs: Record<string, unknown> = {};
  if (input.guests.length > 0) {
    try {
      const s = await statfs(hostPath(input.stateDir));
      const free = Number(s.bavail) * Number(s.bsize);
      const shared = SHARED_FS[Number(s.type)] ?? null;
      Object.assign(fs, { type: `0x${Number(s.type).toString(16)}`, shared, freeBytes: free });
      if (shared) {
        const migration = input.socketFeatures?.includes('cmdarg-migration') ?? null;
        findings.push(
          finding('VTPM_HEALTH_STATE_SHARED_FS', 'warn', `The TPM state directory ${input.stateDir} is on ${shared} (shared storage); swtpm ${migration === false ? 'lacks' : migration ? 'has' : 'may lack'} cmdarg-migration, needed to release the state lock during migration.`, {
            subject: input.stateDir,
            details: { fsType: shared, cmdargMigration: migration },
          }),
        );
      }
      if (free < input.minFreeBytes) {
        findings.push(finding('VTPM_HEALTH_STATE_LOW_SPACE', 'warn', `Only ${free} bytes are free on the filesystem of ${input.stateDir} (threshold ${input.minFreeBytes}).`, { subject: input.stateDir, details: { freeBytes: free } }));
      }
    } catch (err) {
      fs.error = (err as NodeJS.ErrnoException).code ?? String(err);
      findings.push(finding('VTPM_HEALTH_STATE_UNREADABLE_BY_AGENT', 'unknown', `The agent cannot statfs ${input.stateDir} (${String(fs.error)}): free space and shared storage are unknown.`, { subject: input.stateDir, details: { error: fs.error } }));
    }
  }
  return checkResult('guest-state', findings, { guests: perGuest, stateDir: input.stateDir, filesystem: fs, principal: who });
}

export interface GuestStateProbeData extends HealthProbeData {
  guests: GuestStateFact[];
}

/** C5: per vTPM guest, the TPM state libvirt hands to swtpm. */
export const healthGuestStateProbe = healthProbe<GuestStateProbeData>({
  name: 'health-guest-state',
  title: 'Health: per-guest TPM state',
  description: 'state file present and non-empty, owners, parents searchable, .lock owner, filesystem type and free space',
  toggles: ['guest-state'],
  after: [GUEST_INVENTORY, healthBinariesProbe.name],
  async run(ctx, results) {
    const view = guestsFromResults(results);
    if (!view) {
      return {
        checks: [checkResult('guest-state', [finding('VTPM_HEALTH_GUESTS_UNKNOWN', 'warn', 'The guest inventory is not available, so per-guest TPM state cannot be checked.')])],
        guests: [],
      };
    }
    const res = await ctx.facts.get(SWTPM_PRINCIPAL);
    if (!res.principal) {
      return { checks: [checkResult('guest-state', [finding('VTPM_HEALTH_GUEST_STATE_PRINCIPAL_UNKNOWN', 'unknown', 'The swtpm principal is unknown (see C3), so per-guest TPM state cannot be checked against it.')])], guests: [] };
    }
    const caps = results.get(healthBinariesProbe.name)?.data?.socketFeatures ?? null;
    const check = await checkGuestState({
      guests: view.guests,
      stateDir: ctx.config.swtpm.stateDir,
      principal: res.principal,
      accounts: res.accounts,
      hostPath: ctx.hostPath,
      minFreeBytes: ctx.config.health.minFreeBytes,
      socketFeatures: caps,
      swtpmLogDir: ctx.config.health.swtpmLogDir,
    });
    return { checks: [check], guests: (check.facts?.guests as GuestStateProbeData['guests']) ?? [] };
  },
});
