import { z } from 'zod';

/** Barbican secret access preflight (config section `barbican`). */
export const barbicanConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Check that Nova\'s identity can read the vTPM secrets of guests whose restart needs Barbican (does nothing without OpenStack credentials).'),
  cloud: z.string().min(1).nullable().default(null).describe('clouds.yaml cloud to use instead of openstack.cloud: point it at Nova\'s [barbican_service_user] or [service_user] identity.'),
  interface: z.enum(['public', 'internal', 'admin']).nullable().default(null).describe('Catalog interface of the key-manager endpoint; null takes openstack.interface.'),
  intervalSeconds: z.number().min(1).max(86400).default(600).describe('How often a round of checks starts.'),
  ttlSeconds: z.number().min(0).max(7 * 86400).default(3600).describe('An accessible secret is checked again only after this long; failures are checked every round.'),
  concurrency: z.number().int().min(1).max(16).default(2).describe('At most this many Barbican requests at once.'),
  spread: z.boolean().default(true).describe('Spread a round\'s requests over the interval instead of sending them at once.'),
  checkPayload: z.boolean().default(false).describe('Also fetch each payload (policy secret:decrypt, what Nova really needs). The payload is discarded at once: never logged, kept or exposed. Off by default.'),
});

export type BarbicanConfig = z.infer<typeof barbicanConfigSchema>;
