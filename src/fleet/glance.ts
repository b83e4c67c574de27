/**
 * Glance images with their properties (`GET /v2/images`, following `next`). Image properties are
 * top-level keys of each image (hw_tpm_version, hw_tpm_model).
 */
import { z } from 'zod';
import { OpenStackError } from '../openstack/errors.js';
import { parseServiceBody } from '../openstack/parse.js';
import type { JsonResponse, OpenStackSession } from '../openstack/session.js';

const SERVICE = 'image';
const PAGE = 500;
/** Pages followed at most (PAGE × this images): a server that keeps answering `next` must not loop. */
const MAX_PAGES = 1000;

const imageSchema = z.looseObject({ id: z.string().min(1), name: z.string().nullish(), visibility: z.string().optional(), status: z.string().optional() });
const pageSchema = z.object({ images: z.array(imageSchema), next: z.string().optional() });

export interface Image {
  id: string;
  name: string;
  visibility: string;
  /** String-valued properties (the ones Nova reads, e.g. hw_tpm_version). */
  properties: Record<string, string>;
}

export async function listImages(session: OpenStackSession, signal?: AbortSignal): Promise<{ images: Image[]; requests: number }> {
  const images: Image[] = [];
  let path: string | null = `/v2/images?limit=${PAGE}`;
  let requests = 0;
  while (path) {
    if (requests >= MAX_PAGES) throw new OpenStackError({ kind: 'bad-response', service: SERVICE, method: 'GET', path: '/v2/images' }, `image: more than ${MAX_PAGES} pages of images; giving up`);
    requests += 1;
    const res: JsonResponse = await session.request(SERVICE, path, { signal });
    const page: z.infer<typeof pageSchema> = parseServiceBody(pageSchema, res.body, { service: SERVICE, method: 'GET', path: '/v2/images' });
    for (const img of page.images) {
      const properties: Record<string, string> = {};
      for (const [k, v] of Object.entries(img)) if (typeof v === 'string') properties[k] = v;
      images.push({ id: img.id, name: img.name ?? '', visibility: img.visibility ?? 'unknown', properties });
    }
    // `next` is a path under the endpoint, e.g. /v2/images?limit=500&marker=ID.
    path = page.next && page.images.length > 0 ? page.next : null;
  }
  return { images: images.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id)), requests };
}
