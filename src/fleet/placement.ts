/**
 * The fleet's resource providers and their vTPM traits, read with one request per trait (not per
 * host): `GET /resource_providers?required=TRAIT` (microversion 1.18+), plus one listing of all
 * providers. 5,000 hosts cost the same handful of requests as 5.
 */
import { z } from 'zod';
import { parseServiceBody } from '../openstack/parse.js';
import type { OpenStackSession } from '../openstack/session.js';
import { NOVA_TPM_TRAITS, verifiedTraitName } from '../placement/traits.js';
import { TPM_COMBINATIONS } from '../verdict.js';

const SERVICE = 'placement';
/** `required=` needs 1.18; `root_provider_uuid` in listings 1.14. */
export const FLEET_PLACEMENT_MICROVERSIONS = { min: '1.18', max: '1.39' } as const;

const providerSchema = z.object({
  uuid: z.string().min(1),
  name: z.string(),
  root_provider_uuid: z.string().nullish(),
});
const providersSchema = z.object({ resource_providers: z.array(providerSchema) });
const traitListSchema = z.object({ traits: z.array(z.string()) });

export interface FleetProvider {
  uuid: string;
  name: string;
  /** The fleet-relevant traits it carries (Nova's COMPUTE_SECURITY_TPM_*, the fencing and verified traits). */
  traits: string[];
  fenced: boolean;
}

export interface PlacementInventory {
  microversion: string;
  /** Root providers (compute nodes), sorted by name. Nested providers (NUMA, GPUs) are left out. */
  providers: FleetProvider[];
  /** The traits asked about that this Placement knows (a trait unknown to it is carried by nobody). */
  knownTraits: string[];
  /** The fencing trait exists in Placement: some agent fences (enforce mode) or an operator made it. */
  fencingTraitExists: boolean;
  /** Requests made, for the report (one per known trait, plus the listing and the trait lookup). */
  requests: number;
}

export interface InventoryOptions {
  fencingTrait: string;
  /** The agents' owned prefix: their verified traits are `<prefix>VERIFIED_TPM_<v>_<m>`. */
  ownedPrefix: string;
  signal?: AbortSignal;
}

/** Every trait whose holders the fleet view needs. */
export function fleetTraits(options: Pick<InventoryOptions, 'fencingTrait' | 'ownedPrefix'>): string[] {
  return [...NOVA_TPM_TRAITS, options.fencingTrait, ...TPM_COMBINATIONS.map((c) => verifiedTraitName(options.ownedPrefix, c.version, c.model))];
}

export async function readPlacementInventory(session: OpenStackSession, options: InventoryOptions): Promise<PlacementInventory> {
  const { signal } = options;
  const microversion = await session.negotiateMicroversion(SERVICE, FLEET_PLACEMENT_MICROVERSIONS, signal);
  let requests = 0;
  const get = async <T>(schema: z.ZodType<T>, path: string): Promise<T> => {
    requests += 1;
    const res = await session.request(SERVICE, path, { microversion, signal });
    return parseServiceBody(schema, res.body, { service: SERVICE, method: 'GET', path: path.split('?')[0]! });
  };
  const wanted = fleetTraits(options);
  // Asking `required=` for a trait Placement does not know is a 400; find out which exist first.
  const known = new Set((await get(traitListSchema, `/traits?name=in:${wanted.map(encodeURIComponent).join(',')}`)).traits);
  const all = (await get(providersSchema, '/resource_providers')).resource_providers;
  const holders = new Map<string, Set<string>>();
  for (const trait of wanted.filter((t) => known.has(t))) {
    const withTrait = (await get(providersSchema, `/resource_providers?required=${encodeURIComponent(trait)}`)).resource_providers;
    for (const p of withTrait) {
      const set = holders.get(p.uuid) ?? new Set<string>();
      set.add(trait);
      holders.set(p.uuid, set);
    }
  }
  const providers = all
    .filter((p) => !p.root_provider_uuid || p.root_provider_uuid === p.uuid)
    .map((p): FleetProvider => {
      const traits = [...(holders.get(p.uuid) ?? [])].sort();
      return { uuid: p.uuid, name: p.name, traits, fenced: traits.includes(options.fencingTrait) };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.uuid.localeCompare(b.uuid));
  return { microversion, providers, knownTraits: [...known].sort(), fencingTraitExists: known.has(options.fencingTrait), requests };
}
