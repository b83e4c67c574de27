/** Keystone's service catalog: parsed once from the token response, then looked up purely. */
import { OpenStackError } from './errors.js';
import type { EndpointInterface } from './credentials.js';

export interface CatalogEndpoint {
  interface: string;
  region: string | null;
  url: string;
}

export interface CatalogService {
  type: string;
  name: string | null;
  endpoints: CatalogEndpoint[];
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

/** Tolerant of extra fields; entries without a type or URL are dropped, not fatal. */
export function parseCatalog(raw: unknown): CatalogService[] {
  if (!Array.isArray(raw)) return [];
  const services: CatalogService[] = [];
  for (const entry of raw) {
    if (typeof entry !== 'object' || entry === null) continue;
    const e = entry as Record<string, unknown>;
    const type = str(e.type);
    if (!type) continue;
    const endpoints: CatalogEndpoint[] = [];
    for (const ep of Array.isArray(e.endpoints) ? e.endpoints : []) {
      if (typeof ep !== 'object' || ep === null) continue;
      const p = ep as Record<string, unknown>;
      const url = str(p.url);
      const iface = str(p.interface);
      if (url && iface) endpoints.push({ interface: iface, region: str(p.region_id) ?? str(p.region), url });
    }
    services.push({ type, name: str(e.name), endpoints });
  }
  return services;
}

/** The endpoint for a service type on the wanted interface (and region, when one is set). */
export function findEndpoint(catalog: CatalogService[], serviceType: string, iface: EndpointInterface, region: string | null): string {
  const service = catalog.find((s) => s.type === serviceType);
  const available = (service?.endpoints ?? []).map((e) => `${e.interface}${e.region ? `@${e.region}` : ''}`);
  const match = service?.endpoints.find((e) => e.interface === iface && (region === null || e.region === region));
  if (!match) {
    const wanted = `${serviceType} (${iface}${region ? `, region ${region}` : ''})`;
    const message = service
      ? `no ${wanted} endpoint in the service catalog; it has: ${available.join(', ') || 'none'}`
      : `service type ${serviceType} is not in the service catalog (types: ${catalog.map((s) => s.type).join(', ') || 'none'})`;
    throw new OpenStackError({ kind: 'endpoint', service: serviceType, detail: wanted }, message);
  }
  return match.url.replace(/\/+$/, '');
}
