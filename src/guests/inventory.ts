import { readFile } from 'node:fs/promises';
import { AgentError } from '../errors.js';
import { virshBatch, type BatchOutputCap, type VirshOptions } from '../libvirt/virsh.js';
import { KiB, MiB } from '../util/exec.js';
import { atRiskGuests, inferSecretMode } from './classify.js';
import { parseDomainXml } from './domain-xml.js';
import { loadNovaSettings } from '../host/nova-conf.js';
import type { DomainError, GuestInventory, LibvirtSecret, VtpmGuest } from './types.js';
import { parseDomStats, parseLibvirtVersion, parseSecretList, parseSecretXml, parseUuidList, stripPrompts } from './virsh-text.js';
import type { AgentConfig } from '../config/schema.js';
import type { HostPathResolver } from '../util/hostpath.js';

export interface InventoryOptions {
  virsh: VirshOptions;
  /** Output allowance per domain XML (`libvirt.domainXmlMaxBytes`). */
  domainXmlMaxBytes: number;
  /** Resolved (host-root) path of nova.conf, or null to not judge `resume_guests_state_on_host_boot`. */
  novaConfPath: string | null;
}

/** Raw outputs of the two virsh batches, so parsing is testable without libvirt. */
export interface InventoryRaw {
  list: string;
  secretList: string;
  /** false when virsh reported an error for `secret-list` (so an empty list means "unknown"). */
  secretListFailed: boolean;
  version: string;
  /** `domstats --state` for every domain at once (state and reason by name). */
  domstats: string;
  domains: Array<{ uuid: string; xml: string }>;
  secretXml: Record<string, string>;
}

/**
 * nova.conf's resume flag: null with no error when there is no nova.conf (not every host has one)
 * or none is configured; null with the reason when it exists but cannot be read.
 */
export async function readResumeFlag(path: string | null): Promise<{ resume: boolean | null; error: string | null }> {
  if (path === null) return { resume: null, error: null };
  // The path is already resolved under the host root.
  const settings = await loadNovaSettings([path], (p) => p);
  const unreadable = settings?.unreadable[0];
  if (unreadable) return { resume: null, error: `${unreadable.path}: ${unreadable.error}` };
  return { resume: settings ? settings.resumeGuestsStateOnHostBoot : null, error: null };
}

/**
 * Output cap of the first batch (list, secret-list, version, domstats --state). The domain count
 * is not known before it, so it is sized for the largest host: about 250 B per domain across the
 * list (37 B), its domstats (~80 B) and its secret (~110 B), so 2 MiB holds 8,000 domains (a
 * compute node runs hundreds at most).
 */
export const LISTS_BATCH_CAP: BatchOutputCap = { baseBytes: 2 * MiB, perCommandBytes: () => 0 };

/** A `<secret>` document is ~300 B. */
const SECRET_XML_BYTES = 16 * KiB;

/**
 * Output cap of the second batch, from what it asks for: 64 KiB plus `domainXmlMaxBytes` per
 * `dumpxml` and 16 KiB per `secret-dumpxml` in the process (virshBatch sums it per chunk).
 */
export function xmlBatchCap(domainXmlMaxBytes: number): BatchOutputCap {
  return { baseBytes: 64 * KiB, perCommandBytes: (command) => (command.startsWith('dumpxml ') ? domainXmlMaxBytes : SECRET_XML_BYTES) };
}

/**
 * Two virsh processes whatever the number of domains: the lists, versions and every domain's
 * state (one bulk `domstats` call) first, then each domain's XML and each vTPM secret's flags.
 */
export async function fetchInventoryRaw(virsh: VirshOptions, domainXmlMaxBytes: number): Promise<InventoryRaw> {
  const first = await virshBatch(['list --all --uuid', 'secret-list', 'version', 'domstats --state'], virsh, LISTS_BATCH_CAP);
  const [list, secretList, version, domstats] = first.outputs.map((o) => o.stdout);
  const uuids = parseUuidList(list ?? '');
  const secretListFailed = /secret/i.test(first.stderr);
  const vtpmSecrets = parseSecretList(secretList ?? '').filter((s) => s.usageType === 'vtpm');
  const commands: string[] = [];
  for (const uuid of uuids) commands.push(`dumpxml ${uuid}`);
  for (const s of vtpmSecrets) commands.push(`secret-dumpxml ${s.uuid}`);
  const second = await virshBatch(commands, virsh, xmlBatchCap(domainXmlMaxBytes));
  const domains = uuids.map((uuid, i) => ({ uuid, xml: second.outputs[i]?.stdout ?? '' }));
  const secretXml: Record<string, string> = {};
  vtpmSecrets.forEach((s, i) => {
    secretXml[s.uuid] = second.outputs[uuids.length + i]?.stdout ?? '';
  });
  return { list: list ?? '', secretList: secretList ?? '', secretListFailed, version: version ?? '', domstats: domstats ?? '', domains, secretXml };
}

/**
 * Turns raw virsh output into the inventory. Lists that cannot be parsed throw VTPM_ERR_PARSE (the
 * inventory would be a guess); one bad domain becomes an error entry and never hides the others,
 * but when no domain's XML could be parsed at all there is no inventory either.
 */
export function buildInventory(raw: InventoryRaw, resumeGuestsStateOnHostBoot: boolean | null, now = Date.now()): GuestInventory {
  const errors: DomainError[] = [];
  let secrets: LibvirtSecret[] | null = null;
  if (!raw.secretListFailed) {
    secrets = parseSecretList(raw.secretList).map((s) => {
      const xml = raw.secretXml[s.uuid];
      const flags = xml === undefined ? null : parseSecretXml(xml);
      return { ...s, ephemeral: flags?.ephemeral ?? null, private: flags?.private ?? null };
    });
  }
  const secretIds = secrets ? new Set(secrets.map((s) => s.uuid)) : null;
  const states = parseDomStats(raw.domstats);
  const guests: VtpmGuest[] = [];
  for (const d of raw.domains) {
    const xml = stripPrompts(d.xml);
    if (!xml.trim()) {
      errors.push({ domain: d.uuid, code: 'VTPM_ERR_GUEST_DOMAIN_UNREADABLE', message: 'virsh dumpxml returned nothing (domain vanished or unreadable)' });
      continue;
    }
    let parsed;
    try {
      parsed = parseDomainXml(xml);
    } catch (err) {
      const e = err instanceof AgentError ? err : new AgentError('VTPM_ERR_PARSE', String(err));
      errors.push({ domain: d.uuid, code: e.code, message: e.message });
      continue;
    }
    if (!parsed.tpm) continue;
    const st = states.get(parsed.name);
    const encryptionSecret = parsed.tpm.encryptionSecret?.toLowerCase() ?? null;
    const base = { uuid: parsed.uuid, encryptionSecret, nova: parsed.nova };
    const mode = inferSecretMode(base, secrets);
    guests.push({
      uuid: parsed.uuid,
      name: parsed.name,
      instanceUuid: parsed.nova ? parsed.uuid : null,
      tpmVersion: parsed.tpm.version,
      tpmModel: parsed.tpm.model,
      encryptionSecret,
      state: st?.state ?? 'unknown',
      stateReason: st?.reason ?? null,
      nova: parsed.nova,
      secretMode: mode.mode,
      secretModeSource: mode.source,
      secretPresent: encryptionSecret === null || secretIds === null ? null : secretIds.has(encryptionSecret),
    });
  }
  const unparsable = errors.filter((e) => e.code === 'VTPM_ERR_PARSE');
  if (unparsable.length > 0 && unparsable.length === raw.domains.filter((d) => stripPrompts(d.xml).trim()).length) {
    throw new AgentError('VTPM_ERR_PARSE', `virsh dumpxml printed no parsable domain XML (${unparsable.length} of ${raw.domains.length} domains): ${unparsable[0]!.message}`, {
      details: { command: 'virsh dumpxml', domains: unparsable.length },
    });
  }
  const libvirtVersion = parseLibvirtVersion(raw.version);
  if (libvirtVersion === null) {
    throw new AgentError('VTPM_ERR_PARSE', `virsh version printed no libvirt version: ${JSON.stringify(stripPrompts(raw.version).trim().slice(0, 200))}`, { details: { command: 'virsh version' } });
  }
  return {
    collectedAt: now,
    guests,
    domainsSeen: raw.domains.length,
    errors,
    secrets,
    libvirtVersion,
    resumeGuestsStateOnHostBoot,
    atRisk: atRiskGuests(guests, { libvirtVersion, resumeGuestsStateOnHostBoot }),
  };
}

/** The whole inventory: two virsh processes plus one file read. */
export async function collectInventory(options: InventoryOptions): Promise<GuestInventory> {
  const [raw, nova] = await Promise.all([fetchInventoryRaw(options.virsh, options.domainXmlMaxBytes), readResumeFlag(options.novaConfPath)]);
  return { ...buildInventory(raw, nova.resume), novaConfError: nova.error };
}

/** virsh options for read-only inventory calls, shared with the restart watcher. */
export function inventoryOptions(config: AgentConfig, hostPath: HostPathResolver, env: NodeJS.ProcessEnv, timeoutMs: number, signal?: AbortSignal) {
  return {
    virsh: {
      virshPath: config.libvirt.virshPath,
      uri: config.libvirt.uri,
      readOnly: true,
      timeoutMs,
      signal,
      env,
    },
    novaConfPath: config.guests.novaConfPath ? hostPath(config.guests.novaConfPath) : null,
    domainXmlMaxBytes: config.libvirt.domainXmlMaxBytes,
  };
}
