import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { HostPathResolver } from '../util/hostpath.js';
import { hostFact } from './facts.js';
import { listProcesses, PROCESSES } from './processes.js';
import { parseMountinfo } from './mountinfo.js';

/**
 * Reaches files that live inside the libvirt container rather than on the host. Atmosphere's
 * libvirt pod does not share `/var/log/swtpm`, `/etc/libvirt/secrets` or `/var/lib/swtpm-localca`
 * with the host, but a pod that shares the host PID namespace sees libvirtd's mount namespace at
 * `/proc/<libvirtd pid>/root/`. On a host where libvirtd runs under systemd, the same paths are
 * plain host paths, so the answer depends on where libvirtd runs — which this module finds out.
 */

export type LibvirtdPlacement = 'host' | 'container' | 'unknown';

export interface LibvirtdProcess {
  pid: number;
  /** The process name as the kernel reports it (`comm`), e.g. `libvirtd` or `virtqemud`. */
  name: string;
  placement: LibvirtdPlacement;
  /** `<proc>/<pid>/root` as seen from this process (under the host root). */
  root: string;
  /** Why the placement is unknown (the root could not be inspected). */
  reason?: UnreachableReason;
  detail?: string;
}

/** Stable codes for why a path of the libvirt container cannot be read. */
export type UnreachableReason =
  /** No libvirtd/virtqemud in `<proc>`: the pod does not share the host PID namespace (hostPID), or libvirtd is not running. */
  | 'LIBVIRTD_NOT_VISIBLE'
  /** `<proc>/<pid>/root` refused: CAP_SYS_PTRACE missing, or an AppArmor/SELinux profile blocks ptrace-read. */
  | 'PROC_ROOT_DENIED'
  /** The process exited between the scan and the read. */
  | 'PROCESS_GONE'
  /** The root is reachable but the path does not exist there. */
  | 'PATH_MISSING'
  /** The path exists but this process may not read it (owner/mode). */
  | 'PATH_DENIED';

export interface ContainerPath {
  /** The path as libvirtd sees it, e.g. `/var/log/swtpm`. */
  path: string;
  reachable: boolean;
  /** Where the agent reads it, when reachable. */
  resolved: string | null;
  via: 'host' | 'libvirt-container' | null;
  pid: number | null;
  reason?: UnreachableReason;
  /** Human explanation, including what to change. */
  detail?: string;
}

export interface LocateOptions {
  hostPath: HostPathResolver;
  /** Process names that count as the libvirt daemon. */
  daemonNames: readonly string[];
  /** The host's processes when already scanned (a probe round's PROCESSES); else /proc is scanned here. */
  processes?: ReadonlyArray<{ pid: number; comm: string }>;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isDenied(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EACCES' || code === 'EPERM';
}

const DENIED_HINT = 'grant CAP_SYS_PTRACE and run unconfined by AppArmor (containerd\'s default profile blocks ptrace-read), or run privileged';

/**
 * The libvirt daemon that runs QEMU guests among the host's processes: virtqemud (modular libvirt)
 * before libvirtd (monolithic), and of several of one name (e.g. a stale one) the lowest pid, which
 * on a host that has not wrapped its pids is the oldest, the one that owns the sockets. The one rule, for everyone who looks for libvirtd.
 */
export function pickLibvirtDaemon<P extends { pid: number; comm: string }>(processes: readonly P[], daemonNames: readonly string[] = LIBVIRT_DAEMON_NAMES): P | null {
  const wanted = new Set(daemonNames);
  const rank = (p: P) => (p.comm === 'virtqemud' ? 0 : 1);
  const found = processes.filter((p) => wanted.has(p.comm)).sort((a, b) => rank(a) - rank(b) || a.pid - b.pid);
  return found[0] ?? null;
}

/**
 * Finds the libvirt daemon among `<host root>/proc` and tells whether it runs on the host or in a
 * container, by comparing its root directory with that of PID 1 (the host's init when the PID
 * namespace is the host's). Returns null when no such process is visible.
 */
export async function locateLibvirtd(options: LocateOptions): Promise<LibvirtdProcess | null> {
  const procDir = options.hostPath('/proc');
  const processes = options.processes ?? (await listProcesses(options.hostPath));
  const daemon = pickLibvirtDaemon(processes, options.daemonNames);
  if (!daemon) return null;
  const { pid, comm: name } = daemon;
  const root = path.join(procDir, String(pid), 'root');
  let daemonRoot;
  try {
    daemonRoot = await stat(root + '/');
  } catch (err) {
    if (isDenied(err)) {
      return { pid, name, root, placement: 'unknown', reason: 'PROC_ROOT_DENIED', detail: `${root}: ${(err as Error).message}; ${DENIED_HINT}` };
    }
    return { pid, name, root, placement: 'unknown', reason: 'PROCESS_GONE', detail: `${root}: ${(err as Error).message}` };
  }
  try {
    const initRoot = await stat(path.join(procDir, '1', 'root') + '/');
    return { pid, name, root, placement: daemonRoot.dev === initRoot.dev && daemonRoot.ino === initRoot.ino ? 'host' : 'container' };
  } catch {
    // PID 1 may hold capabilities this process lacks (ptrace-read then needs more than
    // CAP_SYS_PTRACE, e.g. in a sandbox): judge by libvirtd's own root mount instead.
    return { pid, name, root, placement: await placementFromMountinfo(path.join(procDir, String(pid), 'mountinfo')) };
  }
}

/** Filesystems a container runtime mounts as a container's root. */
const CONTAINER_ROOT_FS = new Set(['overlay', 'aufs', 'fuse-overlayfs', 'shiftfs']);

/**
 * The placement from `/proc/<pid>/mountinfo`: a container's `/` is an overlay (or a bind of a
 * subdirectory), the host's is the root filesystem itself.
 */
export function placementFromMountinfoText(text: string): LibvirtdPlacement {
  // The last mount on / is the visible one.
  const root = parseMountinfo(text).filter((m) => m.mountPoint === '/').at(-1);
  if (!root) return 'unknown';
  return CONTAINER_ROOT_FS.has(root.fsType) || root.root !== '/' ? 'container' : 'host';
}

async function placementFromMountinfo(file: string): Promise<LibvirtdPlacement> {
  try {
    return placementFromMountinfoText(await readFile(file, 'utf8'));
  } catch {
    return 'unknown';
  }
}

async function probePath(candidate: string): Promise<{ ok: true } | { ok: false; reason: UnreachableReason; detail: string }> {
  try {
    await readdirOrStat(candidate);
    return { ok: true };
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return { ok: false, reason: 'PATH_MISSING', detail: `${candidate} does not exist` };
    return { ok: false, reason: 'PATH_DENIED', detail: `${candidate}: ${(err as Error).message}` };
  }
}

/** A directory must be listable to be useful; a file must be stat-able. */
async function readdirOrStat(candidate: string): Promise<void> {
  const st = await stat(candidate);
  if (st.isDirectory()) await readdir(candidate);
}

/**
 * Where the agent can read `libvirtPath` as libvirtd sees it: through `/proc/<pid>/root` when
 * libvirtd runs in a container, on the host root otherwise. Never throws; an unreachable path
 * comes back with a reason code and a detail saying what to change.
 */
export async function resolveLibvirtPath(libvirtPath: string, daemon: LibvirtdProcess | null, hostPath: HostPathResolver): Promise<ContainerPath> {
  const base = { path: libvirtPath, pid: daemon?.pid ?? null };
  if (daemon === null) {
    return {
      ...base,
      reachable: false,
      resolved: null,
      via: null,
      reason: 'LIBVIRTD_NOT_VISIBLE',
      detail: `no libvirt daemon in ${hostPath('/proc')}: libvirtd is not running, or the agent does not share the host PID namespace (hostPID: true)`,
    };
  }
  if (daemon.placement === 'unknown') {
    // Where libvirtd runs is unknown; a path present on the host is still worth reading, and the
    // detail keeps the reason the container view was not available.
    const onHost = await probePath(hostPath(libvirtPath));
    if (onHost.ok) return { ...base, reachable: true, resolved: hostPath(libvirtPath), via: 'host', detail: `read from the host; ${daemon.detail ?? ''}`.trim() };
    return { ...base, reachable: false, resolved: null, via: null, reason: daemon.reason ?? 'PROC_ROOT_DENIED', detail: daemon.detail ?? '' };
  }
  const candidate = daemon.placement === 'host' ? hostPath(libvirtPath) : path.join(daemon.root, path.resolve('/', libvirtPath));
  const via = daemon.placement === 'host' ? 'host' : 'libvirt-container';
  const result = await probePath(candidate);
  if (result.ok) return { ...base, reachable: true, resolved: candidate, via };
  return { ...base, reachable: false, resolved: null, via, reason: result.reason, detail: result.detail };
}

/** The daemon names Nova's libvirt driver can talk to (monolithic and modular libvirt). */
export const LIBVIRT_DAEMON_NAMES: readonly string[] = ['libvirtd', 'virtqemud'];

/**
 * A resolver for paths as libvirtd sees them (its swtpm logs, local CA, secrets, swtpm_setup
 * configuration): through `/proc/<pid>/root` when libvirtd runs in a container — Atmosphere does
 * not share those directories with the host — else on the host root. libvirtd is located once
 * per call, from `processes` when given (a probe round reads it as the LIBVIRT_VIEW host fact).
 */
export async function libvirtViewResolver(
  hostPath: HostPathResolver,
  daemonNames: readonly string[] = LIBVIRT_DAEMON_NAMES,
  processes?: LocateOptions['processes'],
): Promise<HostPathResolver> {
  const daemon = await locateLibvirtd({ hostPath, daemonNames, ...(processes ? { processes } : {}) }).catch(() => null);
  return libvirtView(daemon, hostPath);
}

/** Paths as `daemon` sees them: through its root when it runs in a container, else the host's. */
function libvirtView(daemon: LibvirtdProcess | null, hostPath: HostPathResolver): HostPathResolver {
  if (daemon?.placement !== 'container') return hostPath;
  return (libvirtPath: string) => path.join(daemon.root, path.resolve('/', libvirtPath));
}

/** The round's libvirt daemon and where it runs (null: none visible), from the round's process list. */
export const LIBVIRTD = hostFact<LibvirtdProcess | null>('libvirtd', async (facts) =>
  locateLibvirtd({ hostPath: facts.hostPath, daemonNames: LIBVIRT_DAEMON_NAMES, processes: await facts.get(PROCESSES) }).catch(() => null),
);

/** The round's view of paths as libvirtd sees them. */
export const LIBVIRT_VIEW = hostFact<HostPathResolver>('libvirt-view', async (facts) => libvirtView(await facts.get(LIBVIRTD), facts.hostPath));
