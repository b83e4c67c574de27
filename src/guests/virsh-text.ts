import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { AgentError } from '../errors.js';
import type { DomainState, LibvirtSecret } from './types.js';

/**
 * Parsers for virsh's text output (one job: text in, typed values out). virsh in batch mode on a
 * pipe echoes its prompt (`virsh > cmd` / `virsh # cmd`) into stdout; those lines are dropped.
 */
export function stripPrompts(section: string): string {
  return section
    .split('\n')
    .filter((line) => !/^virsh [#>] /.test(line))
    .join('\n');
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}

/** A line virsh would never print there: its output is not what the inventory can use. */
function unexpectedLine(command: string, line: string): AgentError {
  return new AgentError('VTPM_ERR_PARSE', `virsh ${command} printed a line it never prints: ${JSON.stringify(line.slice(0, 120))}`, { details: { command: `virsh ${command}` } });
}

/** `virsh list --all --uuid`: one UUID per line; any other line is a VTPM_ERR_PARSE. */
export function parseUuidList(text: string): string[] {
  const lines = stripPrompts(text)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  for (const l of lines) if (!isUuid(l)) throw unexpectedLine('list --all --uuid', l);
  return lines.map((l) => l.toLowerCase());
}

const STATES: Record<string, DomainState> = {
  running: 'running',
  idle: 'blocked',
  blocked: 'blocked',
  paused: 'paused',
  'in shutdown': 'shutdown',
  'shut off': 'shutoff',
  crashed: 'crashed',
  pmsuspended: 'pmsuspended',
};

/** `virsh domstate --reason`: `shut off (failed)`, `running (booted)`. null when empty. */
export function parseDomState(text: string): { state: DomainState; reason: string | null } | null {
  const line = stripPrompts(text)
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean);
  if (!line) return null;
  const m = /^(.*?)(?:\s*\(([^)]*)\))?$/.exec(line);
  const stateText = (m?.[1] ?? line).trim().toLowerCase();
  return { state: STATES[stateText] ?? 'unknown', reason: m?.[2]?.trim() || null };
}

const STATE_CODES: DomainState[] = ['unknown', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'];

/** libvirt's per-state reason enums (virDomain*Reason), spelled as `virsh domstate --reason` prints them. */
const REASONS: Partial<Record<DomainState, string[]>> = {
  running: ['unknown', 'booted', 'migrated', 'restored', 'from snapshot', 'unpaused', 'migration canceled', 'save canceled', 'event wakeup', 'crashed', 'post-copy', 'post-copy failed'],
  blocked: ['unknown'],
  paused: ['unknown', 'user', 'migrating', 'saving', 'dumping', 'I/O error', 'watchdog', 'from snapshot', 'shutting down', 'creating snapshot', 'crashed', 'starting up', 'post-copy', 'post-copy failed', 'api error'],
  shutdown: ['unknown', 'user'],
  shutoff: ['unknown', 'shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from snapshot', 'daemon'],
  crashed: ['unknown', 'panicked'],
  pmsuspended: ['unknown'],
};

/**
 * `virsh domstats --state` (one bulk call for every domain): `Domain: 'name'` then
 * `state.state=N` and `state.reason=N`. Keyed by domain name.
 */
export function parseDomStats(text: string): Map<string, { state: DomainState; reason: string | null }> {
  const out = new Map<string, { state: DomainState; reason: string | null }>();
  let name: string | null = null;
  let code: number | null = null;
  let reason: number | null = null;
  const flush = () => {
    if (name !== null && code !== null) {
      const state = STATE_CODES[code] ?? 'unknown';
      const reasonText = reason === null ? null : (REASONS[state]?.[reason] ?? String(reason));
      out.set(name, { state, reason: reasonText });
    }
    name = null;
    code = null;
    reason = null;
  };
  for (const raw of stripPrompts(text).split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const d = /^Domain: '(.*)'$/.exec(line);
    if (d) {
      flush();
      name = d[1]!;
      continue;
    }
    const kv = /^state\.(state|reason)=(\d+)$/.exec(line);
    if (kv && name !== null) {
      if (kv[1] === 'state') code = Number(kv[2]);
      else reason = Number(kv[2]);
    } else if (!/^[\w.-]+=/.test(line)) {
      // Other `key=value` statistics are tolerated (a newer libvirt may add some); anything else is not domstats.
      throw unexpectedLine('domstats --state', line);
    }
  }
  flush();
  return out;
}

/** `virsh -q secret-list`: ` UUID   usage-type usage-name`; a line not starting with a UUID is a VTPM_ERR_PARSE. */
export function parseSecretList(text: string): Array<{ uuid: string; usageType: string | null; usageName: string | null }> {
  const out: Array<{ uuid: string; usageType: string | null; usageName: string | null }> = [];
  for (const raw of stripPrompts(text).split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const [uuid, usageType, ...rest] = line.split(/\s+/);
    if (!uuid || !isUuid(uuid)) throw unexpectedLine('secret-list', line);
    out.push({ uuid: uuid.toLowerCase(), usageType: usageType ?? null, usageName: rest.length ? rest.join(' ') : null });
  }
  return out;
}

const secretParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, parseAttributeValue: false });

/** `virsh secret-dumpxml`: ephemeral/private flags; null when the XML is not usable. */
export function parseSecretXml(xml: string): Pick<LibvirtSecret, 'ephemeral' | 'private'> | null {
  const trimmed = stripPrompts(xml).trim();
  if (!trimmed || XMLValidator.validate(trimmed) !== true) return null;
  const doc = secretParser.parse(trimmed) as { secret?: Record<string, unknown> };
  const secret = doc.secret;
  if (!secret || typeof secret !== 'object') return null;
  const flag = (name: string): boolean | null => {
    const v = secret[`@_${name}`];
    return v === 'yes' ? true : v === 'no' ? false : v === undefined ? false : null;
  };
  return { ephemeral: flag('ephemeral'), private: flag('private') };
}

/** `virsh version`: the library version (`Using library: libvirt 9.0.0`). */
export function parseLibvirtVersion(text: string): string | null {
  const m = /Using library: libvirt (\d+\.\d+\.\d+)/.exec(text);
  return m?.[1] ?? null;
}
