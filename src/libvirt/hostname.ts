import type { AgentConfig } from '../config/schema.js';
import { parseHostname } from '../identity/parse.js';
import { SMALL_OUTPUT_BYTES } from '../util/exec.js';
import { virsh } from './virsh.js';

export interface HostnameCall {
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/**
 * libvirt's host name (`virsh hostname`, virConnectGetHostname()): Nova's libvirt driver names its
 * node, and so the Placement resource provider, by it. Throws with the reason when unreadable.
 */
export async function libvirtHostname(libvirt: AgentConfig['libvirt'], call: HostnameCall): Promise<string> {
  const out = await virsh(['hostname'], { virshPath: libvirt.virshPath, uri: libvirt.uri, readOnly: true, ...call }, SMALL_OUTPUT_BYTES);
  return parseHostname(out, 'virsh hostname');
}

/** The same, null when libvirt cannot say (the Placement reconciler then falls back to its own sources). */
export function virshHostname(config: AgentConfig, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<string | null> {
  return libvirtHostname(config.libvirt, { timeoutMs: config.libvirt.timeoutSeconds * 1000, env, ...(signal ? { signal } : {}) }).catch(() => null);
}
