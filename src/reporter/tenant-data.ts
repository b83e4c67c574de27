/**
 * Tenant data in the report (/status, `check --json`): the fields that identify a tenant or a
 * secret (README "Security" lists them). /status shows them only to an authenticated client of a
 * web configuration with auth; everyone else gets the report with them replaced by `[redacted]`
 * — wherever the same values occur (table cells, summaries, messages), not only under their keys.
 * Instance and domain UUIDs and libvirt domain names stay: alerts and runbooks route by them.
 */

/** Keys whose values identify a tenant (Nova metadata) or a secret. */
const TENANT_KEYS: ReadonlySet<string> = new Set([
  'projectId',
  'projectName',
  'userId',
  'userName',
  /** Nova's display name of the instance (chosen by the tenant; not the libvirt domain name). */
  'instanceName',
  'encryptionSecret',
  'secretUuid',
]);

export const REDACTED = '[redacted]';
/** Shorter values would match too much text to be replaced safely (and identify nothing). */
const MIN_VALUE_LENGTH = 4;

function collect(node: unknown, values: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collect(item, values);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  // A libvirt secret (has usageType): its UUID and usage name are a secret's identity.
  if ('usageType' in record) {
    for (const k of ['uuid', 'usageName']) if (typeof record[k] === 'string') values.add(record[k] as string);
  }
  for (const [key, value] of Object.entries(record)) {
    if (TENANT_KEYS.has(key) && typeof value === 'string') values.add(value);
    else collect(value, values);
  }
}

function rewrite(node: unknown, replace: (s: string) => string): unknown {
  if (typeof node === 'string') return replace(node);
  if (Array.isArray(node)) return node.map((item) => rewrite(item, replace));
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    out[key] = TENANT_KEYS.has(key) && value !== null && value !== undefined ? REDACTED : rewrite(value, replace);
  }
  return out;
}

/** A copy of `doc` (any JSON value) without tenant data. */
export function redactTenantData<T>(doc: T): T {
  const values = new Set<string>();
  collect(doc, values);
  const needles = [...values].filter((v) => v.length >= MIN_VALUE_LENGTH).sort((a, b) => b.length - a.length);
  const replace = (s: string): string => {
    let out = s;
    for (const needle of needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    return out;
  };
  return rewrite(JSON.parse(JSON.stringify(doc)), replace) as T;
}
