/**
 * The Placement calls the reconciler needs, typed at the edge. There is deliberately no call
 * that deletes traits: `DELETE /resource_providers/{uuid}/traits` ignores the generation and
 * would wipe Nova's traits too.
 */
import { z } from 'zod';
import { OpenStackError } from '../openstack/errors.js';
import { parseServiceBody } from '../openstack/parse.js';
import type { OpenStackSession } from '../openstack/session.js';

export const SERVICE_TYPE = 'placement';
/** Traits need 1.6; 1.39 is the newest this agent knows (and what Placement 8 offers). */
export const MICROVERSION_RANGE = { min: '1.6', max: '1.39' } as const;

const providerSchema = z.object({ uuid: z.string().min(1), name: z.string(), generation: z.number().int() });
const providersSchema = z.object({ resource_providers: z.array(providerSchema) });
const traitsSchema = z.object({ traits: z.array(z.string()), resource_provider_generation: z.number().int() });
const traitListSchema = z.object({ traits: z.array(z.string()) });

export type Provider = z.infer<typeof providerSchema>;
export interface ProviderTraits {
  traits: string[];
  generation: number;
}

function parse<T>(schema: z.ZodType<T>, body: unknown, method: string, path: string): T {
  return parseServiceBody(schema, body, { service: SERVICE_TYPE, method, path });
}

export type PutTraitsResult = { ok: true; traits: ProviderTraits } | { ok: false; conflict: true; detail: string | undefined };

export class PlacementClient {
  constructor(private readonly session: OpenStackSession) {}

  microversion(signal?: AbortSignal): Promise<string> {
    return this.session.negotiateMicroversion(SERVICE_TYPE, MICROVERSION_RANGE, signal);
  }

  private async get<T>(schema: z.ZodType<T>, path: string, signal: AbortSignal | undefined, accept: number[] = []): Promise<{ status: number; value: T | null }> {
    const microversion = await this.microversion(signal);
    const res = await this.session.request(SERVICE_TYPE, path, { microversion, signal, accept });
    if (res.status !== 200) return { status: res.status, value: null };
    return { status: res.status, value: parse(schema, res.body, 'GET', path.split('?')[0]!) };
  }

  async findProvidersByName(name: string, signal?: AbortSignal): Promise<Provider[]> {
    const { value } = await this.get(providersSchema, `/resource_providers?name=${encodeURIComponent(name)}`, signal);
    return value!.resource_providers;
  }

  /** null when no provider has this UUID. */
  async getProvider(uuid: string, signal?: AbortSignal): Promise<Provider | null> {
    const { value } = await this.get(providerSchema, `/resource_providers/${encodeURIComponent(uuid)}`, signal, [404]);
    return value;
  }

  /** null when the provider is gone (deleted, or re-created with a new UUID). */
  async getTraits(uuid: string, signal?: AbortSignal): Promise<ProviderTraits | null> {
    const { value } = await this.get(traitsSchema, `/resource_providers/${encodeURIComponent(uuid)}/traits`, signal, [404]);
    return value ? { traits: [...value.traits].sort(), generation: value.resource_provider_generation } : null;
  }

  /** Which of `names` this Placement knows (its os-traits version plus custom traits). */
  async knownTraits(names: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const { value } = await this.get(traitListSchema, `/traits?name=in:${names.map(encodeURIComponent).join(',')}`, signal);
    return new Set(value!.traits);
  }

  /** Creates a custom trait; true when it was new (201), false when it existed (204). */
  async ensureCustomTrait(name: string, signal?: AbortSignal): Promise<boolean> {
    const microversion = await this.microversion(signal);
    const res = await this.session.request(SERVICE_TYPE, `/traits/${encodeURIComponent(name)}`, { method: 'PUT', microversion, signal });
    return res.status === 201;
  }

  /**
   * Replaces the provider's traits, guarded by its generation. A stale generation is a
   * result (`conflict`), not an error: the caller re-reads and tries again.
   */
  async putTraits(uuid: string, traits: readonly string[], generation: number, signal?: AbortSignal): Promise<PutTraitsResult> {
    const microversion = await this.microversion(signal);
    const path = `/resource_providers/${encodeURIComponent(uuid)}/traits`;
    const res = await this.session.request<unknown>(SERVICE_TYPE, path, {
      method: 'PUT',
      microversion,
      signal,
      json: { traits, resource_provider_generation: generation },
      accept: [409],
    });
    if (res.status === 409) {
      const first = (res.body as { errors?: Array<{ code?: string; detail?: string }> } | null)?.errors?.[0];
      if (first?.code !== undefined && first.code !== 'placement.concurrent_update') {
        throw new OpenStackError(
          { kind: 'status', service: SERVICE_TYPE, method: 'PUT', path, status: 409, errorCode: first.code, detail: first.detail },
          `placement: PUT ${path} → HTTP 409 ${first.code}`,
        );
      }
      return { ok: false, conflict: true, detail: first?.detail?.replace(/\s+/g, ' ').trim() };
    }
    const value = parse(traitsSchema, res.body, 'PUT', path);
    return { ok: true, traits: { traits: [...value.traits].sort(), generation: value.resource_provider_generation } };
  }
}
