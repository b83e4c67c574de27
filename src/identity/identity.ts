import { readFile } from 'node:fs/promises';
import { toAgentError } from '../errors.js';
import type { AgentConfig } from '../config/schema.js';
import { libvirtHostname } from '../libvirt/hostname.js';
import { probeKey } from '../results.js';
import { runCommand, SMALL_OUTPUT_BYTES } from '../util/exec.js';
import { locateLibvirtd, resolveLibvirtPath, type ContainerPath, type LibvirtdProcess, type LocateOptions } from '../host/libvirtd-location.js';
import type { HostPathResolver } from '../util/hostpath.js';
import { parseComputeId, parseHostname } from './parse.js';
import { loadNovaSettings } from '../host/nova-conf.js';

export type IdentitySource = 'config' | 'nova.conf' | 'hostname --fqdn' | 'compute_id' | 'libvirt';

/** One identity fact: its value and where it came from, or why it is missing. */
export interface IdentityValue {
  value: string | null;
  source: IdentitySource | null;
  error?: string;
}

export interface NodeIdentity {
  /** Nova's `host` (service and instance host): `[DEFAULT] host`, else `hostname --fqdn`. */
  novaHost: IdentityValue;
  /** The compute node UUID (= its Placement resource provider UUID). */
  computeNodeUuid: IdentityValue;
  /** The Placement resource provider name (= Nova's hypervisor_hostname, libvirt's host name). */
  providerName: IdentityValue;
  libvirtd: Pick<LibvirtdProcess, 'pid' | 'name' | 'placement' | 'reason' | 'detail'> | null;
  /** The libvirt container's paths (Atmosphere does not share them with the host). */
  containerPaths: ContainerPath[];
}

/** The node-identity probe's key: `results.get(NODE_IDENTITY)` is typed. */
export const NODE_IDENTITY = probeKey<NodeIdentity>('node-identity');

/** What gathering the identity needs, passed explicitly (no probe context). */
export interface IdentityInputs {
  identity: AgentConfig['identity'];
  libvirt: AgentConfig['libvirt'];
  hostPath: HostPathResolver;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Milliseconds left for the whole gathering; each command gets the smaller of this and its own limit. */
  remainingMs(): number;
  /** The round's process list (PROCESSES), where libvirtd is looked for; scanned here when absent. */
  processes?: LocateOptions['processes'];
}

function timeoutMs(ctx: IdentityInputs): number {
  return Math.max(1, Math.min(ctx.identity.timeoutSeconds * 1000, ctx.remainingMs()));
}

function failure(err: unknown): IdentityValue {
  return { value: null, source: null, error: toAgentError(err).message };
}

async function novaHost(ctx: IdentityInputs): Promise<IdentityValue> {
  const { novaHost: fixed, novaConfPath, hostnamePath } = ctx.identity;
  if (fixed) return { value: fixed, source: 'config' };
  let confNote: string | undefined;
  if (novaConfPath) {
    // Absent on hosts without nova-compute and in pods without the nova.conf Secret: not an error.
    const settings = await loadNovaSettings([novaConfPath], ctx.hostPath);
    if (settings?.host) return { value: settings.host, source: 'nova.conf' };
    const unreadable = settings?.unreadable[0];
    if (unreadable) confNote = `${novaConfPath} not readable: ${unreadable.error}`;
  }
  try {
    const result = await runCommand(hostnamePath, ['--fqdn'], { timeoutMs: timeoutMs(ctx), maxOutputBytes: SMALL_OUTPUT_BYTES, signal: ctx.signal, env: ctx.env });
    if (result.exitCode !== 0) throw new Error(`hostname --fqdn exited ${result.exitCode}: ${result.stderr.trim().slice(0, 200)}`);
    const value = parseHostname(result.stdout, 'hostname --fqdn');
    return confNote ? { value, source: 'hostname --fqdn', error: confNote } : { value, source: 'hostname --fqdn' };
  } catch (err) {
    return failure(err);
  }
}

async function computeNodeUuid(ctx: IdentityInputs): Promise<IdentityValue> {
  const file = ctx.identity.computeIdPath;
  try {
    return { value: parseComputeId(await readFile(ctx.hostPath(file), 'utf8'), file), source: 'compute_id' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { value: null, source: null, error: `${file} does not exist (nova-compute has not started here, or Nova is older than 2023.1)` };
    }
    return failure(err);
  }
}

async function providerName(ctx: IdentityInputs): Promise<IdentityValue> {
  const fixed = ctx.identity.providerName;
  if (fixed) return { value: fixed, source: 'config' };
  try {
    const value = await libvirtHostname(ctx.libvirt, { timeoutMs: timeoutMs(ctx), signal: ctx.signal, env: ctx.env });
    return { value, source: 'libvirt' };
  } catch (err) {
    return failure(err);
  }
}

/** Gathers the node identity; never throws, each fact carries its own error. */
export async function gatherNodeIdentity(ctx: IdentityInputs): Promise<NodeIdentity> {
  const { libvirtDaemonNames, libvirtContainerPaths } = ctx.identity;
  const [host, uuid, provider, daemon] = await Promise.all([
    novaHost(ctx),
    computeNodeUuid(ctx),
    providerName(ctx),
    locateLibvirtd({ hostPath: ctx.hostPath, daemonNames: libvirtDaemonNames, ...(ctx.processes ? { processes: ctx.processes } : {}) }),
  ]);
  const containerPaths = await Promise.all(libvirtContainerPaths.map((p) => resolveLibvirtPath(p, daemon, ctx.hostPath)));
  return {
    novaHost: host,
    computeNodeUuid: uuid,
    providerName: provider,
    libvirtd: daemon && { pid: daemon.pid, name: daemon.name, placement: daemon.placement, reason: daemon.reason, detail: daemon.detail },
    containerPaths,
  };
}
