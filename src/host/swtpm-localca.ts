/**
 * swtpm_setup.conf and the swtpm-localca.conf it names (create_certs_tool_config), as libvirtd sees
 * them: the one reader and parser of both. A round fact: the local-CA check and the container
 * mount check read the same answer. Read errors are data (errno codes), never exceptions.
 */
import { iniGet, parseIni, type IniData } from '../util/ini.js';
import type { HostPathResolver } from '../util/hostpath.js';
import { hostFact } from './facts.js';
import { readText } from './fsinfo.js';
import { LIBVIRT_VIEW } from './libvirtd-location.js';

export interface LocalCaConfig {
  /** swtpm_setup.conf's path (as libvirtd sees it). */
  setupConf: string;
  /** Why swtpm_setup.conf could not be read; null when it was. */
  setupError: string | null;
  /** `create_certs_tool`; null when unset (swtpm_setup then makes no certificates). */
  createCertsTool: string | null;
  /** `create_certs_tool_config`: swtpm-localca.conf's path; null when unset. */
  localcaConf: string | null;
  /** Why swtpm-localca.conf could not be read; null when it was or is not configured. */
  localcaError: string | null;
  /** swtpm-localca.conf's settings (statedir, signingkey, …); null when not read. */
  localca: IniData | null;
}

export async function readLocalCaConfig(setupConf: string, hostPath: HostPathResolver): Promise<LocalCaConfig> {
  const out: LocalCaConfig = { setupConf, setupError: null, createCertsTool: null, localcaConf: null, localcaError: null, localca: null };
  const setup = await readText(hostPath(setupConf));
  if (setup.text === null) return { ...out, setupError: setup.error };
  const ini = parseIni(setup.text);
  out.createCertsTool = iniGet(ini, '', 'create_certs_tool') || null;
  out.localcaConf = iniGet(ini, '', 'create_certs_tool_config') || null;
  if (!out.localcaConf) return out;
  const ca = await readText(hostPath(out.localcaConf));
  if (ca.text === null) return { ...out, localcaError: ca.error };
  return { ...out, localca: parseIni(ca.text) };
}

/** A setting of swtpm-localca.conf (statedir, certserial, signingkey, issuercert); null when unset. */
export function localCaSetting(conf: LocalCaConfig, key: string): string | null {
  return (conf.localca && iniGet(conf.localca, '', key)) || null;
}

/** The local CA directory (an absolute `statedir`); null when there is none or it cannot be read. */
export function localCaStatedir(conf: LocalCaConfig): string | null {
  const dir = localCaSetting(conf, 'statedir');
  return dir && dir.startsWith('/') ? dir : null;
}

/** The round's local-CA configuration, read where libvirtd lives. */
export const SWTPM_LOCALCA = hostFact<LocalCaConfig>('swtpm-localca', async (facts) => readLocalCaConfig(facts.config.health.swtpmSetupConf, await facts.get(LIBVIRT_VIEW)));
