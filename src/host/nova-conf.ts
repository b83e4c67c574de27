import { hostFact } from './facts.js';
import { readText } from './fsinfo.js';
import { iniGet, parseIni, parseOsloBool, parseOsloList, type IniData } from '../util/ini.js';
import type { HostPathResolver } from '../util/hostpath.js';

/**
 * The nova.conf options the agent reads, with Nova's defaults applied: the one reader and parser of
 * nova.conf (health checks, the guest inventory's resume flag and the node identity all use it).
 */
export interface NovaVtpmSettings {
  /** Files that were read (in order). */
  files: string[];
  /** Files that exist but could not be read, with the errno code. */
  unreadable: Array<{ path: string; error: string }>;
  /** `[DEFAULT] host`; null when unset (Nova then uses the hostname). */
  host: string | null;
  swtpmEnabled: boolean;
  swtpmUser: string;
  swtpmGroup: string;
  virtType: string;
  resumeGuestsStateOnHostBoot: boolean;
  /** Nova 2026.1+; null when not set (older Nova: only `user` exists). */
  supportedTpmSecretSecurity: string[] | null;
  /** Values that oslo.config would reject, by option. */
  invalid: Array<{ option: string; value: string }>;
}

/** Pure: merged INI → settings with Nova's defaults (nova/conf/libvirt.py, nova/conf/compute.py). */
export function novaSettings(data: IniData, files: string[], unreadable: NovaVtpmSettings['unreadable']): NovaVtpmSettings {
  const invalid: NovaVtpmSettings['invalid'] = [];
  const bool = (section: string, key: string, dflt: boolean): boolean => {
    const raw = iniGet(data, section, key);
    if (raw === undefined) return dflt;
    const b = parseOsloBool(raw);
    if (b === null) {
      invalid.push({ option: `[${section}] ${key}`, value: raw });
      return dflt;
    }
    return b;
  };
  return {
    files,
    unreadable,
    host: iniGet(data, 'DEFAULT', 'host') || null,
    swtpmEnabled: bool('libvirt', 'swtpm_enabled', false),
    swtpmUser: iniGet(data, 'libvirt', 'swtpm_user') || 'tss',
    swtpmGroup: iniGet(data, 'libvirt', 'swtpm_group') || 'tss',
    virtType: iniGet(data, 'libvirt', 'virt_type') || 'kvm',
    resumeGuestsStateOnHostBoot: bool('DEFAULT', 'resume_guests_state_on_host_boot', false),
    supportedTpmSecretSecurity: parseOsloList(iniGet(data, 'libvirt', 'supported_tpm_secret_security')),
    invalid,
  };
}

/**
 * Reads nova.conf files in order (later ones override, as oslo.config's --config-file); null when
 * none exists (not a Nova compute node, or not visible).
 */
export async function loadNovaSettings(paths: readonly string[], hostPath: HostPathResolver): Promise<NovaVtpmSettings | null> {
  const data: IniData = new Map();
  const files: string[] = [];
  const unreadable: NovaVtpmSettings['unreadable'] = [];
  for (const file of paths) {
    const r = await readText(hostPath(file));
    if (r.text !== null) {
      parseIni(r.text, data);
      files.push(file);
    } else if (r.error !== 'ENOENT') unreadable.push({ path: file, error: r.error });
  }
  if (files.length === 0 && unreadable.length === 0) return null;
  return novaSettings(data, files, unreadable);
}

/** The round's nova.conf settings (null: no nova.conf). */
export const NOVA_SETTINGS = hostFact<NovaVtpmSettings | null>('nova-settings', (facts) => loadNovaSettings(facts.config.health.novaConf, facts.hostPath));
