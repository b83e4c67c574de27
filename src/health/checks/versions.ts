import { parseVirshVersion } from '../../libvirt/version.js';
import { runCommand } from '../../util/exec.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding } from '../types.js';
import { compareVersions, upstreamVersion } from '../version.js';

export const VERSION_COMPONENTS = ['libvirt', 'qemu', 'swtpm', 'libtpms', 'openssl'] as const;
export type VersionComponent = (typeof VERSION_COMPONENTS)[number];
export type Versions = Record<VersionComponent, string | null>;

export interface VersionsInput {
  virshPath: string;
  uri: string;
  swtpmPath: string | null;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** `Running against daemon: 9.0.0` from `virsh version --daemon`. */
export function parseDaemonVersion(output: string): string | null {
  return /Running against daemon:\s*(\d+(?:\.\d+)*)/.exec(output)?.[1] ?? null;
}

/** `TPM emulator version 0.7.1, Copyright …` */
export function parseSwtpmVersion(output: string): string | null {
  return /TPM emulator version (\d+(?:\.\d+)*)/.exec(output)?.[1] ?? null;
}

/** `OpenSSL 3.0.19 27 Jan 2026 (Library: …)` */
export function parseOpensslVersion(output: string): string | null {
  return /^OpenSSL (\d+\.\d+\.\d+\w*)/.exec(output.trim())?.[1] ?? null;
}

async function tryRun(file: string, args: string[], input: VersionsInput): Promise<string | null> {
  try {
    const r = await runCommand(file, args, { timeoutMs: input.timeoutMs, signal: input.signal, env: input.env });
    return r.exitCode === 0 ? r.stdout : null;
  } catch {
    return null;
  }
}

/** libtpms has no CLI of its own: ask the package manager (dpkg, then rpm). */
async function libtpmsVersion(input: VersionsInput): Promise<string | null> {
  const deb = await tryRun('dpkg-query', ['-W', '-f', '${Version}', 'libtpms0'], input);
  if (deb?.trim()) return upstreamVersion(deb.trim());
  const rpm = await tryRun('rpm', ['-q', '--qf', '%{VERSION}', 'libtpms'], input);
  if (rpm?.trim() && !/not installed/.test(rpm)) return upstreamVersion(rpm.trim());
  return null;
}

export async function readVersions(input: VersionsInput): Promise<Versions> {
  const [virshOut, swtpmOut, opensslOut, libtpms] = await Promise.all([
    tryRun(input.virshPath, ['-r', '-c', input.uri, 'version', '--daemon'], input),
    input.swtpmPath ? tryRun(input.swtpmPath, ['--version'], input) : Promise.resolve(null),
    tryRun('openssl', ['version'], input),
    libtpmsVersion(input),
  ]);
  const v = virshOut ? parseVirshVersion(virshOut) : null;
  return {
    libvirt: (virshOut ? parseDaemonVersion(virshOut) : null) ?? v?.libvirt ?? null,
    qemu: v?.hypervisor === 'QEMU' ? v.hypervisorVersion : null,
    swtpm: swtpmOut ? parseSwtpmVersion(swtpmOut) : null,
    libtpms,
    openssl: opensslOut ? parseOpensslVersion(opensslOut) : null,
  };
}

/** C13: versions as facts (exported as `_info` for fleet comparison), with the known version gates. */
export function evaluateVersions(v: Versions): CheckResult {
  const findings: Finding[] = [];
  for (const c of ['libvirt', 'qemu', 'swtpm', 'libtpms'] as const) {
    if (v[c] === null) findings.push(finding('VTPM_HEALTH_VERSION_UNKNOWN', 'warn', `The ${c} version could not be determined.`, { subject: c }));
  }
  if (v.libvirt && compareVersions(v.libvirt, '8.9.0') < 0) {
    findings.push(finding('VTPM_HEALTH_LIBVIRT_NO_KEEP_TPM', 'warn', `libvirt ${v.libvirt} < 8.9.0 deletes a guest's TPM state on every undefine (no KEEP_TPM flag); Nova versions that undefine on hard reboot erase vTPMs.`, { subject: 'libvirt' }));
  }
  return checkResult('versions', findings, { ...v });
}
