/**
 * Finds this host's resource provider: Nova's `compute_id` file first (the UUID Nova itself
 * uses), else by name (libvirt's hostname, which Nova registers as the hypervisor hostname, or
 * a configured name). Not found is a typed error the reconciler reports and retries later.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { AgentError } from '../errors.js';
import type { HostPathResolver } from '../util/hostpath.js';
import type { PlacementClient, Provider } from './client.js';
import type { PlacementConfig } from './config.js';

export interface ProviderRef {
  uuid: string;
  name: string;
  /** How it was found. */
  via: 'compute_id' | 'name';
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** The UUID in Nova's compute_id file, or why there is none (a note for status, never fatal). */
export async function readComputeId(file: string): Promise<{ uuid: string } | { note: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { note: code === 'ENOENT' ? `${file} does not exist` : `${file} is not readable (${code ?? (err as Error).message})` };
  }
  const value = text.trim();
  if (!UUID.test(value)) return { note: `${file} does not hold a UUID (${JSON.stringify(value.slice(0, 40))})` };
  return { uuid: value.toLowerCase() };
}

export interface DiscoveryDeps {
  client: PlacementClient;
  config: PlacementConfig;
  hostPath: HostPathResolver;
  /** libvirt's hostname (`virsh hostname`); null when libvirt cannot say. */
  libvirtHostname: () => Promise<string | null>;
  signal?: AbortSignal;
}

export async function discoverProvider(deps: DiscoveryDeps): Promise<{ provider: ProviderRef; notes: string[] }> {
  const { client, config, signal } = deps;
  const notes: string[] = [];
  if (config.computeIdPath) {
    const id = await readComputeId(deps.hostPath(config.computeIdPath));
    if ('uuid' in id) {
      const p = await client.getProvider(id.uuid, signal);
      if (p) return { provider: { uuid: p.uuid, name: p.name, via: 'compute_id' }, notes };
      notes.push(`compute_id ${id.uuid} from ${config.computeIdPath} is not a resource provider in Placement`);
    } else {
      notes.push(id.note);
    }
  }
  const names: string[] = [];
  if (config.providerName) names.push(config.providerName);
  else {
    const libvirtName = await deps.libvirtHostname().catch(() => null);
    if (libvirtName) names.push(libvirtName);
    else notes.push("libvirt's hostname is unavailable; trying the OS hostname");
    const osName = os.hostname();
    if (!names.includes(osName)) names.push(osName);
  }
  for (const name of names) {
    const found: Provider[] = await client.findProvidersByName(name, signal);
    const p = found[0];
    if (p) return { provider: { uuid: p.uuid, name: p.name, via: 'name' }, notes };
  }
  throw new AgentError('VTPM_ERR_PLACEMENT_PROVIDER_NOT_FOUND', `no resource provider for this host (tried name ${names.map((n) => JSON.stringify(n)).join(', ')}${notes.length ? `; ${notes.join('; ')}` : ''})`, {
    details: { names, notes },
  });
}
