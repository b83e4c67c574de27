import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { canAccess, type Want } from '../access.js';
import { octal, parentsOf, pathInfo } from '../../host/fsinfo.js';
import { localCaSetting, SWTPM_LOCALCA, type LocalCaConfig } from '../../host/swtpm-localca.js';
import { type Accounts, groupName, userName } from '../../host/accounts.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { SWTPM_PRINCIPAL, type Principal } from '../../host/swtpm-principal.js';
import { LIBVIRT_VIEW } from '../../host/libvirtd-location.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { healthProbe } from '../probe.js';

/** The lock swtpm_localca takes before touching the CA (swtpm_localca.c). */
export const LOCALCA_LOCK = '.lock.swtpm-localca';

export interface LocalCaInput {
  /** swtpm_setup.conf and swtpm-localca.conf as read this round (SWTPM_LOCALCA). */
  conf: LocalCaConfig;
  principal: Principal;
  accounts: Accounts;
  hostPath: HostPathResolver;
}

function describe(info: { uid: number; gid: number; mode: number }, accounts: Accounts): string {
  return `${userName(accounts, info.uid)}:${groupName(accounts, info.gid)} ${octal(info.mode)}`;
}

/** The agent (not the swtpm principal) could not look: the answer is unknown, naming path and error. */
function agentCannotRead(subject: string, what: 'list' | 'stat' | 'read', error: string | undefined): Finding {
  return finding('VTPM_HEALTH_LOCALCA_UNREADABLE_BY_AGENT', 'unknown', `The agent cannot ${what} ${subject} (${error ?? 'error'}) as uid ${process.getuid?.() ?? '?'}: whether the swtpm principal can use the local CA is unknown.`, { subject, details: { error } });
}

/** Every parent directory of `target` must be searchable by the principal. */
async function traversal(target: string, p: Principal, hostPath: HostPathResolver, accounts: Accounts): Promise<Finding | null> {
  for (const dir of parentsOf(target)) {
    const info = await pathInfo(hostPath(dir));
    if (info.exists && !canAccess(info, p, ['x'])) {
      return finding('VTPM_HEALTH_LOCALCA_PATH_NOT_TRAVERSABLE', 'fail', `${p.user} cannot search ${dir} (${describe(info, accounts)}), so it cannot reach ${target}.`, { subject: dir });
    }
  }
  return null;
}

/**
 * C4: the swtpm local CA that signs EK and platform certificates for every *new* vTPM. Found
 * through swtpm_setup.conf → create_certs_tool_config → statedir (never hard-coded); the
 * directory and each file in it must be usable by the swtpm principal. A root-owned lock, key or
 * serial file (someone ran swtpm_setup --create-ek-cert as root) makes every first start fail.
 */
export async function checkLocalCa(input: LocalCaInput): Promise<CheckResult> {
  const { principal: p, accounts, hostPath, conf } = input;
  const setupConf = conf.setupConf;
  const findings: Finding[] = [];
  const facts: Record<string, unknown> = { principal: `${p.user}:${p.group}`, swtpmSetupConf: setupConf };

  if (conf.setupError !== null && conf.setupError !== 'ENOENT') {
    // The agent could not look (EACCES): that says nothing about swtpm_setup, so unknown, not fail.
    return checkResult('localca', [agentCannotRead(setupConf, 'read', conf.setupError)], facts);
  }
  if (conf.setupError !== null) {
    findings.push(finding('VTPM_HEALTH_SWTPM_SETUP_CONF_UNREADABLE', 'fail', `${setupConf} cannot be read (${conf.setupError}); swtpm_setup cannot create certificates for new vTPMs.`, { subject: setupConf }));
    return checkResult('localca', findings, facts);
  }
  const setupInfo = await pathInfo(hostPath(setupConf));
  if (setupInfo.exists && !canAccess(setupInfo, p, ['r'])) {
    findings.push(finding('VTPM_HEALTH_SWTPM_SETUP_CONF_UNREADABLE', 'fail', `${p.user} cannot read ${setupConf} (${describe(setupInfo, accounts)}): swtpm_setup logs "User ${p.user} cannot read config file".`, { subject: setupConf }));
  }
  const caConf = conf.localcaConf;
  facts.createCertsTool = conf.createCertsTool;
  facts.localcaConf = caConf;
  if (!caConf || !conf.createCertsTool) {
    // Without a certificate tool swtpm_setup makes no certificates: no CA to check.
    return checkResult('localca', findings, { ...facts, note: 'swtpm_setup.conf configures no certificate tool' }, 'not-applicable');
  }
  if (conf.localca === null && conf.localcaError !== null && conf.localcaError !== 'ENOENT') {
    return checkResult('localca', [agentCannotRead(caConf, 'read', conf.localcaError)], facts);
  }
  if (conf.localca === null) {
    findings.push(finding('VTPM_HEALTH_LOCALCA_CONF_UNREADABLE', 'fail', `${caConf} (create_certs_tool_config in ${setupConf}) cannot be read (${conf.localcaError ?? 'error'}).`, { subject: caConf }));
    return checkResult('localca', findings, facts);
  }
  const caConfInfo = await pathInfo(hostPath(caConf));
  if (caConfInfo.exists && !canAccess(caConfInfo, p, ['r'])) {
    findings.push(finding('VTPM_HEALTH_LOCALCA_CONF_UNREADABLE', 'fail', `${p.user} cannot read ${caConf} (${describe(caConfInfo, accounts)}).`, { subject: caConf }));
  }
  const statedir = localCaSetting(conf, 'statedir');
  facts.statedir = statedir;
  if (!statedir || !statedir.startsWith('/')) {
    findings.push(finding('VTPM_HEALTH_LOCALCA_CONF_UNREADABLE', 'fail', `${caConf} has no absolute statedir setting${statedir ? ` ("${statedir}")` : ''}.`, { subject: caConf }));
    return checkResult('localca', findings, facts);
  }
  const trav = await traversal(statedir, p, hostPath, accounts);
  if (trav) findings.push(trav);
  const dirInfo = await pathInfo(hostPath(statedir));
  if (!dirInfo.exists && dirInfo.error !== 'ENOENT' && dirInfo.error !== 'ENOTDIR') {
    findings.push(agentCannotRead(statedir, 'stat', dirInfo.error));
    return checkResult('localca', findings, facts);
  }
  if (!dirInfo.exists) {
    findings.push(finding('VTPM_HEALTH_LOCALCA_DIR_MISSING', 'fail', `The local CA directory ${statedir} does not exist (${dirInfo.error}); the first start of every new vTPM guest will fail in swtpm_localca.`, { subject: statedir }));
    return checkResult('localca', findings, facts);
  }
  if (!dirInfo.isDir || !canAccess(dirInfo, p, ['r', 'w', 'x'])) {
    findings.push(
      finding('VTPM_HEALTH_LOCALCA_DIR_NOT_USABLE', 'fail', `${p.user} cannot read and write the local CA directory ${statedir} (${describe(dirInfo, accounts)}): swtpm_localca logs "Need read/write rights on statedir ${statedir} for user ${p.user}." and new vTPM guests fail to start.`, {
        subject: statedir,
        details: { owner: userName(accounts, dirInfo.uid), group: groupName(accounts, dirInfo.gid), mode: octal(dirInfo.mode) },
      }),
    );
  }
  // What swtpm_localca does with each file: lock and serial are rewritten, key and certs read.
  const wants = new Map<string, Want[]>([[path.join(statedir, LOCALCA_LOCK), ['r', 'w']]]);
  const named: Array<[string, Want[]]> = [
    ['certserial', ['r', 'w']],
    ['signingkey', ['r']],
    ['issuercert', ['r']],
  ];
  for (const [key, want] of named) {
    const file = localCaSetting(conf, key);
    if (file && file.startsWith('/')) wants.set(file, want);
  }
  let entries: string[] = [];
  try {
    entries = await readdir(hostPath(statedir));
  } catch (err) {
    // An empty listing from EACCES is not an empty CA: a root-owned lock there would go unseen.
    findings.push(agentCannotRead(statedir, 'list', (err as NodeJS.ErrnoException).code ?? String(err)));
  }
  for (const e of entries) {
    const full = path.join(statedir, e);
    if (!wants.has(full)) wants.set(full, ['r']);
  }
  const files: Array<Record<string, unknown>> = [];
  for (const [file, want] of wants) {
    const info = await pathInfo(hostPath(file));
    if (!info.exists) {
      // ENOENT: created on first use when the directory is usable; anything else: not seen.
      if (info.error !== 'ENOENT') findings.push(agentCannotRead(file, 'stat', info.error));
      continue;
    }
    files.push({ path: file, owner: userName(accounts, info.uid), group: groupName(accounts, info.gid), mode: octal(info.mode) });
    if (info.isDir) continue;
    if (!canAccess(info, p, want)) {
      const what = want.includes('w') ? 'read and write' : 'read';
      findings.push(
        finding('VTPM_HEALTH_LOCALCA_FILE_NOT_USABLE', 'fail', `${p.user} cannot ${what} ${file} (${describe(info, accounts)}): new vTPM guests fail to start (swtpm_localca "Need read/write rights on ${file} for user ${p.user}.").`, {
          subject: file,
          details: { owner: userName(accounts, info.uid), group: groupName(accounts, info.gid), mode: octal(info.mode), needs: want.join('') },
        }),
      );
    }
  }
  facts.files = files;
  return checkResult('localca', findings, facts);
}

/** C4: the swtpm local CA is usable by the swtpm principal (else every new vTPM guest fails). */
export const healthLocalCaProbe = healthProbe<HealthProbeData>({
  name: 'health-localca',
  title: 'Health: swtpm local CA',
  description: 'swtpm_setup.conf → swtpm-localca.conf statedir exists and every file is usable by the swtpm principal',
  toggles: ['localca'],
  async run(ctx) {
    const res = await ctx.facts.get(SWTPM_PRINCIPAL);
    if (!res.principal) {
      // Could not judge: unknown (never pass or not-applicable), the reason named.
      return { checks: [checkResult('localca', [finding('VTPM_HEALTH_LOCALCA_PRINCIPAL_UNKNOWN', 'unknown', 'The swtpm principal is unknown (see C3), so the local CA cannot be checked against it.')])] };
    }
    return { checks: [await checkLocalCa({ conf: await ctx.facts.get(SWTPM_LOCALCA), principal: res.principal, accounts: res.accounts, hostPath: await ctx.facts.get(LIBVIRT_VIEW) })] };
  },
});
