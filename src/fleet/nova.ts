/**
 * Nova flavors with their extra specs (`GET /flavors/detail`, microversion 2.61+ carries
 * `extra_specs` in each flavor), public and private, page by page.
 */
import { z } from 'zod';
import { parseServiceBody } from '../openstack/parse.js';
import type { JsonResponse, OpenStackSession } from '../openstack/session.js';

const SERVICE = 'compute';
/** 2.61: extra_specs in flavor listings (Queens). */
export const COMPUTE_MICROVERSIONS = { min: '2.61', max: '2.100' } as const;
const PAGE = 1000;

const flavorSchema = z.object({
  id: z.string().min(1),
  name: z.string(),
  extra_specs: z.record(z.string(), z.string()).nullish(),
  'os-flavor-access:is_public': z.boolean().optional(),
});
const pageSchema = z.object({
  flavors: z.array(flavorSchema),
  flavors_links: z.array(z.object({ rel: z.string(), href: z.string() })).optional(),
});

export interface Flavor {
  id: string;
  name: string;
  isPublic: boolean;
  extraSpecs: Record<string, string>;
}

export async function listFlavors(session: OpenStackSession, signal?: AbortSignal): Promise<{ flavors: Flavor[]; microversion: string; requests: number }> {
  const microversion = await session.negotiateMicroversion(SERVICE, COMPUTE_MICROVERSIONS, signal);
  const flavors: Flavor[] = [];
  let marker: string | null = null;
  let requests = 0;
  for (;;) {
    const path: string = `/flavors/detail?is_public=None&limit=${PAGE}${marker ? `&marker=${encodeURIComponent(marker)}` : ''}`;
    requests += 1;
    const res: JsonResponse = await session.request(SERVICE, path, { microversion, signal });
    const page: z.infer<typeof pageSchema> = parseServiceBody(pageSchema, res.body, { service: SERVICE, method: 'GET', path: '/flavors/detail' });
    for (const f of page.flavors) {
      flavors.push({ id: f.id, name: f.name, isPublic: f['os-flavor-access:is_public'] ?? true, extraSpecs: f.extra_specs ?? {} });
    }
    const last = page.flavors.at(-1);
    // Nova adds a `next` link when a page is full; a marker that does not move would loop.
    if (!page.flavors_links?.some((l) => l.rel === 'next') || !last || last.id === marker) break;
    marker = last.id;
  }
  return { flavors: flavors.sort((a, b) => a.name.localeCompare(b.name)), microversion, requests };
}
