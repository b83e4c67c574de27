import { parseVirshVersion } from '../../libvirt/version.js';
import { runCommand, SMALL_OUTPUT_BYTES } from '../../util/exec.js';
import type { HostPathResolver } from '../../util/hostpath.js';
import { readText } from '../../host/fsinfo.js';
import { finding } from '../reasons.js';
import { checkResult, type CheckResult, type Finding, type HealthProbeData } from '../types.js';
import { compareVersions, LIBVIRT_KEEP_TPM, upstreamVersion } from '../../host/versions.js';
import { healthProbe, innerTimeout } from '../probe.js';
import { LIBVIRT_VIEW } from '../../host/libvirtd-location.js';
import { which } from '../../util/which.js';

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
  /**
   * Paths as libvirtd sees them (through /proc/<pid>/root when it runs in its own container).
   * swtpm, libtpms and OpenSSL are the ones libvirtd starts and links, so they are read there.
   */
  libvirtView: HostPathResolver;
}

/** Where the swtpm, libtpms and OpenSSL versions were read. */
export type VersionsSource = 'agent' | 'libvirt-packages' | 'none';

/** Debian packages that carry each component (libssl3t64 from Debian 13 on; the library, not the CLI, is what swtpm links). */
const DEBIAN_PACKAGES = {
  swtpm: ['swtpm'],
  libtpms: ['libtpms0'],
  openssl: ['libssl3', 'libssl3t64', 'openssl'],
} as const;

/**
 * Versions of installed packages from a dpkg status database (deb822 stanzas separated by blank
 * lines). Only installed packages count (`install ok installed`, `hold ok installed`); removed ones
 * (`deinstall ok config-files`) are left out.
 */
export function parseDpkgStatus(text: string, wanted: readonly string[]): Map<string, string> {
  const want = new Set(wanted);
  const found = new Map<string, string>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const pkg = /^Package:\s*(\S+)/m.exec(stanza)?.[1];
    if (!pkg || !want.has(pkg)) continue;
    const status = /^Status:\s*(.+)$/m.exec(stanza)?.[1]?.trim();
    const version = /^Version:\s*(\S+)/m.exec(stanza)?.[1];
    // `<want> ok installed`: `install`, or `hold` (apt-mark hold, common for swtpm/libvirt on compute nodes).
    if (status?.split(/\s+/)[2] === 'installed' && version) found.set(pkg, version);
  }
  return found;
}

/** The first of `packages` installed, as its upstream version. */
function packageVersion(installed: Map<string, string>, packages: readonly string[]): string | null {
  for (const p of packages) {
    const v = installed.get(p);
    if (v) return upstreamVersion(v);
  }
  return null;
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
    const r = await runCommand(file, args, { timeoutMs: input.timeoutMs, maxOutputBytes: SMALL_OUTPUT_BYTES, signal: input.signal, env: input.env });
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

export interface VersionsRead {
  versions: Versions;
  source: VersionsSource;
}

export async function readVersions(input: VersionsInput): Promise<VersionsRead> {
  // libvirtd in another container: its swtpm, libtpms and OpenSSL are not the agent's. Binaries are
  // never executed from that root; its package database is read instead.
  const ownView = input.libvirtView('/') === '/';
  const [virshOut, local] = await Promise.all([
    tryRun(input.virshPath, ['-r', '-c', input.uri, 'version', '--daemon'], input),
    ownView ? localVersions(input) : libvirtPackageVersions(input.libvirtView),
  ]);
  const v = virshOut ? parseVirshVersion(virshOut) : null;
  return {
    versions: {
      libvirt: (virshOut ? parseDaemonVersion(virshOut) : null) ?? v?.libvirt ?? null,
      qemu: v?.hypervisor === 'QEMU' ? v.hypervisorVersion : null,
      ...local.versions,
    },
    source: local.source,
  };
}

type LocalVersions = { versions: Pick<Versions, 'swtpm' | 'libtpms' | 'openssl'>; source: VersionsSource };

/** Same root as libvirtd: ask the binaries libvirtd will run, and the package manager for libtpms. */
async function localVersions(input: VersionsInput): Promise<LocalVersions> {
  const [swtpmOut, opensslOut, libtpms] = await Promise.all([
    input.swtpmPath ? tryRun(input.swtpmPath, ['--version'], input) : Promise.resolve(null),
    tryRun('openssl', ['version'], input),
    libtpmsVersion(input),
  ]);
  return {
    versions: {
      swtpm: swtpmOut ? parseSwtpmVersion(swtpmOut) : null,
      libtpms,
      openssl: opensslOut ? parseOpensslVersion(opensslOut) : null,
    },
    source: 'agent',
  };
}

async function libvirtPackageVersions(libvirtView: HostPathResolver): Promise<LocalVersions> {
  const status = await readText(libvirtView('/var/lib/dpkg/status'), 64 * 1024 * 1024);
  if (status.text === null) return { versions: { swtpm: null, libtpms: null, openssl: null }, source: 'none' };
  const installed = parseDpkgStatus(status.text, Object.values(DEBIAN_PACKAGES).flat());
  return {
    versions: {
      swtpm: packageVersion(installed, DEBIAN_PACKAGES.swtpm),
      libtpms: packageVersion(installed, DEBIAN_PACKAGES.libtpms),
      openssl: packageVersion(installed, DEBIAN_PACKAGES.openssl),
    },
    source: 'libvirt-packages',
  };
}

/** C13: versions as facts (exported as `_info` for fleet comparison), with the known version gates. */
export function evaluateVersions(v: Versions, source: VersionsSource = 'agent'): CheckResult {
  const findings: Finding[] = [];
  const where = source === 'none' ? " (libvirtd's root is not the agent's, and has no dpkg database the agent can read)" : '';
  for (const c of ['libvirt', 'qemu', 'swtpm', 'libtpms'] as const) {
    if (v[c] === null) findings.push(finding('VTPM_HEALTH_VERSION_UNKNOWN', 'warn', `The ${c} version could not be determined${where}.`, { subject: c }));
  }
  if (v.libvirt && compareVersions(v.libvirt, LIBVIRT_KEEP_TPM) < 0) {
    findings.push(finding('VTPM_HEALTH_LIBVIRT_NO_KEEP_TPM', 'warn', `libvirt ${v.libvirt} < ${LIBVIRT_KEEP_TPM} deletes a guest's TPM state on every undefine (no KEEP_TPM flag); Nova versions that undefine on hard reboot erase vTPMs.`, { subject: 'libvirt' }));
  }
  return checkResult('versions', findings, { ...v, source });
}

export interface VersionsProbeData extends HealthProbeData {
  versions: Versions;
}

/** C13: libvirt, QEMU, swtpm, libtpms and OpenSSL versions, exported as an `_info` metric. */
export const healthVersionsProbe = healthProbe<VersionsProbeData>({
  name: 'health-versions',
  title: 'Health: component versions',
  description: 'libvirt daemon, QEMU, and the swtpm, libtpms and OpenSSL that libvirtd runs (its package database when it is in another container)',
  toggles: ['versions'],
  async run(ctx) {
    const { versions, source } = await readVersions({
      virshPath: ctx.config.libvirt.virshPath,
      uri: ctx.config.libvirt.uri,
      swtpmPath: await which(ctx.config.swtpm.swtpmPath, ctx.env.PATH),
      env: ctx.env,
      timeoutMs: innerTimeout(ctx),
      signal: ctx.signal,
      libvirtView: await ctx.facts.get(LIBVIRT_VIEW),
    });
    return { checks: [evaluateVersions(versions, source)], versions };
  },
});
