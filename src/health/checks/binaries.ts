import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { readSwtpmCapabilities } from '../../host/swtpm-capabilities.js';
import { which } from '../../util/which.js';
import { toAgentError } from '../../errors.js';
import { parseEnvironPath } from '../parse/proc.js';
import { mountNamespace, readProcText } from '../proc-read.js';
import { pickLibvirtDaemon } from '../../host/libvirtd-location.js';
import { PROCESSES, type ProcInfo } from '../../host/processes.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { compareVersions, SWTPM_LOCALCA_OPENSSL } from '../../host/versions.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { healthProbe, innerTimeout } from '../probe.js';

/** libvirt needs all three on its own PATH (virTPMHasSwtpm). */
export const REQUIRED_BINARIES = ['swtpm', 'swtpm_setup', 'swtpm_ioctl'] as const;
/** Needed to make EK and platform certificates (libvirt always asks for them). */
export const CERT_BINARIES = ['swtpm_localca', 'swtpm_cert'] as const;

export interface BinariesInput {
  pathSource: 'libvirt-daemon' | 'agent';
  daemon: ProcInfo | null;
  agentPath: string | undefined;
  hostPath: HostPathResolver;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal?: AbortSignal;
  checkBinaries: boolean;
  checkCapabilities: boolean;
}

export interface BinariesOutput {
  checks: CheckResult[];
  resolved: Record<string, string | null>;
  socketFeatures: string[] | null;
  setupFeatures: string[] | null;
  swtpmVersion: string | null;
}

function capabilities(file: string, args: string[], what: string, input: BinariesInput) {
  return readSwtpmCapabilities(file, args, what, { timeoutMs: input.timeoutMs, signal: input.signal, env: input.env });
}

/**
 * Whether `p` (a path inside the root `root`, e.g. /proc/<pid>/root) is an executable regular
 * file, by stat and mode only: nothing there is ever run. Symbolic links are followed by hand,
 * absolute targets against `root` (the kernel would resolve them against the agent's root).
 */
export async function executableInRoot(root: string, p: string): Promise<'ok' | 'missing' | 'not-executable'> {
  let rel = p;
  for (let hops = 0; hops < 16; hops++) {
    let st;
    try {
      st = await lstat(path.join(root, rel));
    } catch {
      return 'missing';
    }
    if (st.isSymbolicLink()) {
      const target = await readlink(path.join(root, rel)).catch(() => null);
      if (target === null) return 'missing';
      rel = path.isAbsolute(target) ? target : path.join(path.dirname(rel), target);
      continue;
    }
    if (!st.isFile()) return 'missing';
    return (st.mode & 0o111) !== 0 ? 'ok' : 'not-executable';
  }
  return 'missing';
}

/**
 * C1: swtpm, swtpm_setup and swtpm_ioctl on the PATH *libvirt* uses (read from the daemon's
 * environment), the certificate helpers, and binaries outside /usr that MAC profiles do not cover.
 * C2: the capabilities Nova's always-encrypted vTPMs need (cmdarg-pwd-fd, cmdarg-pwdfile-fd),
 * TPM 2.0 support, and cmdarg-migration reported.
 */
export async function checkBinaries(input: BinariesInput): Promise<BinariesOutput> {
  const findings: Finding[] = [];
  let searchPath = input.agentPath;
  let pathFrom = 'agent';
  // In another mount namespace (containerised libvirt) its binaries are under /proc/<pid>/root.
  let root = input.hostPath('/');
  /** libvirt's binaries are in another container's root: they are looked at, never executed. */
  let inDaemonRoot = false;
  if (input.pathSource === 'libvirt-daemon') {
    const environ = input.daemon ? await readProcText(input.hostPath, input.daemon.pid, 'environ') : null;
    const daemonPath = environ !== null ? parseEnvironPath(environ) : null;
    if (daemonPath !== null && input.daemon) {
      searchPath = daemonPath;
      pathFrom = `${input.daemon.comm} (pid ${input.daemon.pid})`;
      // Same mount namespace as the agent: plain paths; otherwise through the daemon's root.
      const [nsDaemon, nsSelf] = await Promise.all([mountNamespace(input.hostPath, input.daemon.pid), mountNamespace(input.hostPath, 'self')]);
      if (nsDaemon !== null && nsDaemon !== nsSelf) {
        root = input.hostPath(`/proc/${input.daemon.pid}/root`);
        inDaemonRoot = true;
      }
    } else {
      findings.push(
        finding('VTPM_HEALTH_LIBVIRT_PATH_UNKNOWN', 'warn', input.daemon ? `The environment of ${input.daemon.comm} (pid ${input.daemon.pid}) cannot be read; the agent's PATH is used instead.` : 'No libvirtd or virtqemud process is visible; the agent\'s PATH is used instead.', {
          subject: 'PATH',
        }),
      );
    }
  }
  const rooted = (p: string | undefined) =>
    (p ?? '')
      .split(':')
      .filter(Boolean)
      .map((d) => (root === '/' ? d : path.join(root, d)))
      .join(':');
  const lookupPath = rooted(searchPath);
  const unroot = (p: string) => (root === '/' ? p : '/' + path.relative(root, p));
  const resolved: Record<string, string | null> = {};
  /** Found on libvirt's PATH but without any execute bit (libvirt cannot run it either). */
  const notExecutable: Record<string, string> = {};
  for (const name of [...REQUIRED_BINARIES, ...CERT_BINARIES, 'certtool', 'openssl']) {
    if (!inDaemonRoot) {
      resolved[name] = await which(name, lookupPath);
      continue;
    }
    resolved[name] = null;
    for (const dir of (searchPath ?? '').split(':').filter(Boolean)) {
      const candidate = path.join(dir, name);
      const state = await executableInRoot(root, candidate);
      if (state === 'ok') {
        resolved[name] = path.join(root, candidate);
        break;
      }
      if (state === 'not-executable') notExecutable[name] ??= candidate;
    }
  }
  const display = (name: string) => (resolved[name] ? unroot(resolved[name]!) : null);
  if (input.checkBinaries) {
    for (const name of REQUIRED_BINARIES) {
      if (!resolved[name]) {
        const nx = notExecutable[name] ? ` (${notExecutable[name]} exists but is not executable)` : '';
        findings.push(finding('VTPM_HEALTH_BINARY_MISSING', 'fail', `${name} is not on libvirt's PATH (from ${pathFrom})${nx}: libvirt ${name === 'swtpm_ioctl' ? 'cannot stop swtpm cleanly (swtpm processes outlive their guests)' : 'reports no TPM emulator support and vTPM guests fail'}.`, { subject: name }));
        continue;
      }
      // realpath inside another root would resolve absolute links against ours: only follow links here.
      const shown = unroot(root === input.hostPath('/') ? await realpath(resolved[name]!).catch(() => resolved[name]!) : resolved[name]!);
      if (!shown.startsWith('/usr/bin/') && !shown.startsWith('/usr/sbin/')) {
        findings.push(finding('VTPM_HEALTH_BINARY_OUTSIDE_USR', 'warn', `${name} resolves to ${shown}, outside /usr/bin and /usr/sbin: AppArmor and SELinux rules do not cover it (exit status 126 with an empty log).`, { subject: name }));
      }
    }
    for (const name of CERT_BINARIES) {
      if (!resolved[name]) findings.push(finding('VTPM_HEALTH_CERT_TOOL_MISSING', 'fail', `${name} is not on libvirt's PATH (from ${pathFrom}): swtpm_setup cannot create EK/platform certificates, so new vTPM guests fail.`, { subject: name }));
    }
  }
  let socketFeatures: string[] | null = null;
  let setupFeatures: string[] | null = null;
  let swtpmVersion: string | null = null;
  const capFindings: Finding[] = [];
  if (input.checkCapabilities && inDaemonRoot && (resolved.swtpm || resolved.swtpm_setup)) {
    // Running the libvirt container's own binaries (as root, from the agent) would execute code
    // from another container's root: only binaries on the agent's own PATH are ever run.
    capFindings.push(
      finding('VTPM_HEALTH_CAPS_NOT_READ', 'warn', `swtpm capabilities not read (binary in the libvirt container: ${display('swtpm') ?? display('swtpm_setup')}); the agent runs only binaries on its own PATH.`, {
        subject: 'swtpm',
        details: { root, swtpm: display('swtpm'), swtpmSetup: display('swtpm_setup') },
      }),
    );
  } else if (input.checkCapabilities) {
    if (resolved.swtpm) {
      try {
        const c = await capabilities(resolved.swtpm, ['socket'], 'swtpm socket', input);
        socketFeatures = c.features;
        swtpmVersion = c.version;
      } catch (err) {
        capFindings.push(finding('VTPM_HEALTH_CAPS_UNREADABLE', 'fail', `${display('swtpm')} socket --print-capabilities failed: ${toAgentError(err).message}`, { subject: 'swtpm' }));
      }
    }
    if (resolved.swtpm_setup) {
      try {
        const c = await capabilities(resolved.swtpm_setup, [], 'swtpm_setup', input);
        setupFeatures = c.features;
        swtpmVersion ??= c.version;
      } catch (err) {
        capFindings.push(finding('VTPM_HEALTH_CAPS_UNREADABLE', 'fail', `${display('swtpm_setup')} --print-capabilities failed: ${toAgentError(err).message}`, { subject: 'swtpm_setup' }));
      }
    }
    if (setupFeatures && !setupFeatures.includes('tpm-2.0')) {
      capFindings.push(finding('VTPM_HEALTH_CAPS_NO_TPM2', 'fail', 'swtpm_setup does not report tpm-2.0: libvirt advertises no TPM 2.0 emulator.', { subject: 'swtpm_setup' }));
    }
    if (socketFeatures && !socketFeatures.includes('cmdarg-pwd-fd')) {
      capFindings.push(finding('VTPM_HEALTH_CAPS_NO_PWD_FD', 'fail', 'swtpm lacks cmdarg-pwd-fd: libvirt refuses encrypted vTPMs ("does not support passing passphrase via file descriptor"), and Nova encrypts every vTPM.', { subject: 'swtpm' }));
    }
    if (setupFeatures && !setupFeatures.includes('cmdarg-pwdfile-fd')) {
      capFindings.push(finding('VTPM_HEALTH_CAPS_NO_PWDFILE_FD', 'fail', 'swtpm_setup lacks cmdarg-pwdfile-fd: libvirt cannot manufacture encrypted vTPMs.', { subject: 'swtpm_setup' }));
    }
  }
  // Which certificate tool swtpm_localca needs depends on the swtpm release (openssl from 0.11).
  if (input.checkBinaries && !resolved.certtool && !resolved.openssl) {
    findings.push(finding('VTPM_HEALTH_CERT_TOOL_MISSING', 'fail', `Neither certtool nor openssl is on libvirt's PATH (from ${pathFrom}): swtpm_localca cannot sign EK certificates.`, { subject: 'certtool' }));
  } else if (input.checkBinaries && swtpmVersion) {
    const needs = compareVersions(swtpmVersion, SWTPM_LOCALCA_OPENSSL) < 0 ? 'certtool' : 'openssl';
    if (!resolved[needs]) {
      findings.push(finding('VTPM_HEALTH_CERT_TOOL_MISSING', 'fail', `swtpm ${swtpmVersion}'s swtpm_localca needs ${needs}, which is not on libvirt's PATH (from ${pathFrom}).`, { subject: needs }));
    }
  }
  const checks: CheckResult[] = [];
  const shownResolved = Object.fromEntries(Object.keys(resolved).map((k) => [k, display(k)]));
  if (input.checkBinaries) checks.push(checkResult('binaries', findings, { pathFrom, path: searchPath ?? null, resolved: shownResolved }));
  if (input.checkCapabilities) {
    checks.push(
      checkResult('capabilities', capFindings, {
        version: swtpmVersion,
        socketFeatures,
        setupFeatures,
        cmdargMigration: socketFeatures ? socketFeatures.includes('cmdarg-migration') : null,
        ...(inDaemonRoot ? { read: false, why: 'binary in the libvirt container' } : {}),
      }, resolved.swtpm || resolved.swtpm_setup ? 'pass' : 'not-applicable'),
    );
  }
  return { checks, resolved: shownResolved, socketFeatures, setupFeatures, swtpmVersion };
}

export interface BinariesProbeData extends HealthProbeData {
  socketFeatures: string[] | null;
  setupFeatures: string[] | null;
  swtpmVersion: string | null;
  /** Resolved binary paths as libvirt sees them. */
  resolved: Record<string, string | null>;
}

/** C1 + C2: swtpm helpers on libvirt's own PATH and the capabilities encrypted vTPMs need. */
export const healthBinariesProbe = healthProbe<BinariesProbeData>({
  name: 'health-binaries',
  title: 'Health: swtpm binaries and capabilities',
  description: "swtpm, swtpm_setup, swtpm_ioctl and certificate helpers on libvirt's PATH; cmdarg-pwd-fd/pwdfile-fd",
  toggles: ['binaries', 'capabilities'],
  async run(ctx) {
    const h = ctx.config.health;
    const daemon = h.pathSource === 'libvirt-daemon' ? pickLibvirtDaemon(await ctx.facts.get(PROCESSES)) : null;
    const out = await checkBinaries({
      pathSource: h.pathSource,
      daemon,
      agentPath: ctx.env.PATH,
      hostPath: ctx.hostPath,
      env: ctx.env,
      timeoutMs: innerTimeout(ctx),
      signal: ctx.signal,
      checkBinaries: h.checks.binaries,
      checkCapabilities: h.checks.capabilities,
    });
    return { checks: out.checks, socketFeatures: out.socketFeatures, setupFeatures: out.setupFeatures, swtpmVersion: out.swtpmVersion, resolved: out.resolved };
  },
});
