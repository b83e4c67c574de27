import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { AgentError } from '../errors.js';

/** `<devices><tpm>` of libvirt's domain capabilities, parsed once at the edge. */
export interface TpmDomainCapabilities {
  /** The `<tpm>` element exists at all (libvirt ≥ 8.0). */
  present: boolean;
  supported: boolean;
  models: string[];
  backendModels: string[];
  /** null when the enum is absent (libvirt < 8.6): Nova then assumes both versions. */
  backendVersions: string[] | null;
}

export interface DomainCapabilities {
  path: string | null;
  domainType: string | null;
  machine: string | null;
  arch: string | null;
  tpm: TpmDomainCapabilities;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  // Elements that may repeat become arrays always, so the shape does not depend on counts.
  isArray: (name) => name === 'enum' || name === 'value',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
});

type XmlNode = Record<string, unknown>;

function text(value: unknown): string | null {
  if (typeof value === 'string') return value.trim();
  if (value && typeof value === 'object' && '#text' in value) return String((value as XmlNode)['#text']).trim();
  return null;
}

function enumValues(tpm: XmlNode, name: string): string[] | null {
  const enums = (tpm.enum as XmlNode[] | undefined) ?? [];
  const found = enums.find((e) => e['@name'] === name);
  if (!found) return null;
  return ((found.value as unknown[] | undefined) ?? []).map(text).filter((v): v is string => v !== null && v !== '');
}

/** Parses `virsh domcapabilities` output. Throws VTPM_ERR_PARSE naming what is wrong. */
export function parseDomainCapabilities(xml: string): DomainCapabilities {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new AgentError('VTPM_ERR_PARSE', `domain capabilities are not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  }
  const doc = parser.parse(xml) as XmlNode;
  const root = doc.domainCapabilities as XmlNode | string | undefined;
  if (root === undefined) throw new AgentError('VTPM_ERR_PARSE', 'domain capabilities XML has no <domainCapabilities> root element');
  const caps = typeof root === 'object' ? root : {};
  const devices = (caps.devices as XmlNode | undefined) ?? {};
  const tpmNode = devices.tpm as XmlNode | string | undefined;
  let tpm: TpmDomainCapabilities = { present: false, supported: false, models: [], backendModels: [], backendVersions: null };
  if (tpmNode !== undefined) {
    const node = typeof tpmNode === 'object' ? tpmNode : {};
    tpm = {
      present: true,
      supported: node['@supported'] === 'yes',
      models: enumValues(node, 'model') ?? [],
      backendModels: enumValues(node, 'backendModel') ?? [],
      backendVersions: enumValues(node, 'backendVersion'),
    };
  }
  return { path: text(caps.path), domainType: text(caps.domain), machine: text(caps.machine), arch: text(caps.arch), tpm };
}
