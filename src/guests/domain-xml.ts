import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { AgentError } from '../errors.js';
import type { NovaMetadata } from './types.js';

/** Nova's metadata namespaces by URI (the prefix is the document's choice, so match the URI). */
const NOVA_NAMESPACES: Record<string, string> = {
  'http://openstack.org/xmlns/libvirt/nova/1.0': '1.0',
  'http://openstack.org/xmlns/libvirt/nova/1.1': '1.1',
};

export interface ParsedTpm {
  model: string | null;
  version: string | null;
  encryptionSecret: string | null;
}

export interface ParsedDomain {
  uuid: string;
  name: string;
  /** The first `<tpm>` with an emulator backend; null when the domain has none. */
  tpm: ParsedTpm | null;
  nova: NovaMetadata | null;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  // Repeated elements become arrays always, so a single child and many children read alike.
  isArray: (tagName) => tagName === 'tpm' || /(^|:)extraSpec$/.test(tagName),
});

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function text(value: unknown): string | null {
  if (typeof value === 'string') return value.trim() || null;
  if (typeof value === 'number') return String(value);
  if (isNode(value)) return text(value['#text']);
  return null;
}

function attr(node: unknown, name: string): string | null {
  if (!isNode(node)) return null;
  const value = node[`@_${name}`];
  return typeof value === 'string' && value.length > 0 ? value : null;
}

function parseTpm(devices: Node): ParsedTpm | null {
  for (const tpm of asArray(devices.tpm)) {
    if (!isNode(tpm)) continue;
    const backend = tpm.backend;
    if (!isNode(backend) || attr(backend, 'type') !== 'emulator') continue;
    return {
      model: attr(tpm, 'model'),
      version: attr(backend, 'version'),
      encryptionSecret: attr(backend.encryption, 'secret'),
    };
  }
  return null;
}

/** Finds `<instance>` in Nova's namespace among `<metadata>`'s children, whatever its prefix. */
function findNovaInstance(metadata: Node): { node: Node; prefix: string; version: string } | null {
  for (const [key, value] of Object.entries(metadata)) {
    for (const candidate of asArray(value)) {
      if (!isNode(candidate)) continue;
      const colon = key.indexOf(':');
      const prefix = colon === -1 ? '' : key.slice(0, colon);
      const local = colon === -1 ? key : key.slice(colon + 1);
      if (local !== 'instance') continue;
      const uri = attr(candidate, prefix ? `xmlns:${prefix}` : 'xmlns');
      const version = uri ? NOVA_NAMESPACES[uri] : undefined;
      if (version) return { node: candidate, prefix, version };
    }
  }
  return null;
}

function parseNova(metadata: unknown): NovaMetadata | null {
  if (!isNode(metadata)) return null;
  const found = findNovaInstance(metadata);
  if (!found) return null;
  const q = (local: string) => (found.prefix ? `${found.prefix}:${local}` : local);
  const instance = found.node;
  const flavor = instance[q('flavor')];
  const owner = instance[q('owner')];
  const project = isNode(owner) ? owner[q('project')] : undefined;
  const user = isNode(owner) ? owner[q('user')] : undefined;
  const extraSpecs: Record<string, string> = {};
  const specs = isNode(flavor) ? flavor[q('extraSpecs')] : undefined;
  if (isNode(specs)) {
    for (const spec of asArray(specs[q('extraSpec')])) {
      const name = attr(spec, 'name');
      if (name) extraSpecs[name] = text(spec) ?? '';
    }
  }
  return {
    namespaceVersion: found.version,
    instanceName: text(instance[q('name')]),
    projectId: attr(project, 'uuid'),
    projectName: text(project),
    userId: attr(user, 'uuid'),
    flavorName: attr(flavor, 'name'),
    extraSpecs,
  };
}

/** The first `<tag …>…</tag>` (or `<tag …/>`) block at any depth; libvirt writes no CDATA or comments there. */
function blocks(xml: string, tag: string): string[] {
  const out: string[] = [];
  const open = new RegExp(`<${tag}(?=[\\s>/])`, 'g');
  let m: RegExpExecArray | null;
  while ((m = open.exec(xml)) !== null) {
    const start = m.index;
    const gt = xml.indexOf('>', start);
    if (gt === -1) break;
    if (xml[gt - 1] === '/') {
      out.push(xml.slice(start, gt + 1));
      open.lastIndex = gt + 1;
      continue;
    }
    const close = xml.indexOf(`</${tag}>`, gt);
    if (close === -1) break;
    out.push(xml.slice(start, close + tag.length + 3));
    open.lastIndex = close + tag.length + 3;
  }
  return out;
}

function parseFragment(fragment: string): Node {
  const doc = parser.parse(fragment) as unknown;
  return isNode(doc) ? doc : {};
}

/**
 * Parses one `virsh dumpxml` document. Throws a VTPM_ERR_PARSE error naming what is wrong, so the
 * inventory can record it against that domain and go on with the others.
 *
 * The whole document is checked for well-formedness, but only the parts the agent reads (name,
 * uuid, `<metadata>`, `<tpm>`) are turned into objects: a domain's XML is mostly controllers
 * and this keeps a 500-domain inventory well under a second.
 */
export function parseDomainXml(xml: string): ParsedDomain {
  const trimmed = xml.trim();
  if (!trimmed) throw new AgentError('VTPM_ERR_PARSE', 'domain XML is empty');
  const valid = XMLValidator.validate(trimmed);
  if (valid !== true) {
    throw new AgentError('VTPM_ERR_PARSE', `domain XML is not well-formed: ${valid.err.msg} (line ${valid.err.line})`);
  }
  if (!/^(<\?xml[^>]*>\s*)?<domain[\s>]/.test(trimmed)) throw new AgentError('VTPM_ERR_PARSE', 'domain XML has no <domain> root element');
  const metadata = blocks(trimmed, 'metadata')[0];
  // name and uuid are direct children of <domain>; drop metadata first so a foreign <name> there cannot match.
  const rest = metadata ? trimmed.replace(metadata, '') : trimmed;
  let uuid: string | null = null;
  let name: string | null = null;
  let tpm: ParsedTpm | null = null;
  let nova: NovaMetadata | null = null;
  try {
    // One parse of just the parts we read, gathered under a synthetic root.
    const picked = [blocks(rest, 'uuid')[0] ?? '', blocks(rest, 'name')[0] ?? '', metadata ?? '', ...blocks(rest, 'tpm')].join('');
    const root = parseFragment(`<picked>${picked}</picked>`).picked;
    const node: Node = isNode(root) ? root : {};
    uuid = text(node.uuid);
    name = text(node.name);
    tpm = parseTpm(node);
    nova = parseNova(node.metadata);
  } catch (err) {
    throw new AgentError('VTPM_ERR_PARSE', `domain XML could not be parsed: ${(err as Error).message}`);
  }
  if (!uuid || !/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i.test(uuid)) {
    throw new AgentError('VTPM_ERR_PARSE', `domain XML has no valid <uuid> (got ${JSON.stringify(uuid)})`);
  }
  if (!name) throw new AgentError('VTPM_ERR_PARSE', 'domain XML has no <name>');
  return { uuid: uuid.toLowerCase(), name, tpm, nova };
}
