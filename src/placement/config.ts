import { z } from 'zod';
import { cronExpression } from '../config/cron.js';

/** Placement's trait grammar (os-traits / placement: `^[A-Z0-9_]+$`, at most 255 characters). */
const customTrait = z.string().max(255).regex(/^CUSTOM_[A-Z0-9_]+$/, 'must be a custom trait: CUSTOM_ followed by A-Z, 0-9 or _');

/** The trait the agent sets on its provider while an advertised configuration fails (the fleet rules and dashboard read it). */
export const DEFAULT_FENCING_TRAIT = 'CUSTOM_VTPM_DEGRADED';

/** Section `placement`: the trait reconciler. Credentials come from section `openstack`. */
export const placementConfigSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Run the Placement reconciler (it does nothing until OpenStack credentials are configured).'),
    mode: z
      .enum(['observe', 'enforce'])
      .default('observe')
      .describe('observe: read traits and report drift only. enforce: also write the agent-owned traits (fencing, verified capabilities).'),
    ownedPrefix: z
      .string()
      .regex(/^CUSTOM_[A-Z0-9_]*_$/, 'must start with CUSTOM_ and end with _, e.g. CUSTOM_VTPM_')
      .default('CUSTOM_VTPM_')
      .describe('Traits under this prefix belong to the agent: it adds and removes them; it never touches any other trait.'),
    fencingTrait: customTrait
      .default(DEFAULT_FENCING_TRAIT)
      .describe('Set while an advertised vTPM configuration fails the local checks; put trait:<name>=forbidden on vTPM flavors.'),
    verifiedTraits: z
      .boolean()
      .default(false)
      .describe('Also publish <prefix>VERIFIED_TPM_<version>_<model> for each combination that passed the local checks (flavors may require them).'),
    schedule: cronExpression
      .default('*/5 * * * *')
      .describe('node-cron schedule of the reconcile; it also runs when the capability verdict changes.'),
    providerName: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe("Resource provider name; null: libvirt's hostname (what Nova registers), else the OS hostname."),
    computeIdPath: z
      .string()
      .startsWith('/')
      .nullable()
      .default('/var/lib/nova/compute_id')
      .describe("Nova's compute_id file ([DEFAULT] state_path/compute_id) holding the provider UUID; used when readable, else the name."),
    timeoutSeconds: z.number().positive().max(600).default(60).describe('Limit of one whole reconcile.'),
    maxConflictAttempts: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(6)
      .describe('Writes tried when the provider generation keeps changing (409 placement.concurrent_update).'),
    retryInitialSeconds: z.number().positive().max(3600).default(10).describe('First retry delay after a failed reconcile; doubles up to retryMaxSeconds.'),
    retryMaxSeconds: z.number().positive().max(86400).default(300).describe('Longest retry delay after failures.'),
    traitCacheSeconds: z
      .number()
      .min(0)
      .max(86400)
      .default(3600)
      .describe('How long the list of traits this Placement knows (and the provider UUID) is trusted before being read again.'),
  })
  .refine((c) => c.fencingTrait.startsWith(c.ownedPrefix), { message: 'fencingTrait must start with ownedPrefix', path: ['fencingTrait'] })
  .refine((c) => c.retryMaxSeconds >= c.retryInitialSeconds, { message: 'retryMaxSeconds must be at least retryInitialSeconds', path: ['retryMaxSeconds'] });

export type PlacementConfig = z.infer<typeof placementConfigSchema>;
export type PlacementConfigInput = z.input<typeof placementConfigSchema>;
