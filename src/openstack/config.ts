import { z } from 'zod';

/**
 * How the agent reaches OpenStack. Everything is optional: credentials may come from
 * clouds.yaml (`cloud`, or `OS_CLOUD`), from `OS_*` environment variables, or from `auth` here;
 * fields set here win over both. With no auth URL anywhere, OpenStack features report
 * `not-configured` and do nothing.
 */
const nullableString = z.string().min(1).nullable().default(null);

export const openstackAuthSchema = z.strictObject({
  authUrl: nullableString,
  username: nullableString,
  userId: nullableString,
  password: nullableString,
  userDomainName: nullableString,
  userDomainId: nullableString,
  projectName: nullableString,
  projectId: nullableString,
  projectDomainName: nullableString,
  projectDomainId: nullableString,
  /** Both project domain and user domain when the specific ones are absent (like clouds.yaml). */
  domainName: nullableString,
  domainId: nullableString,
  applicationCredentialId: nullableString,
  applicationCredentialName: nullableString,
  applicationCredentialSecret: nullableString,
});

export const openstackConfigSchema = z.strictObject({
  /** Name of a cloud in clouds.yaml; `OS_CLOUD` when null. */
  cloud: nullableString,
  /** Explicit clouds.yaml; openstacksdk's search path (and `OS_CLIENT_CONFIG_FILE`) when null. */
  cloudsYamlPath: nullableString,
  /** `password` or `v3applicationcredential`; inferred from the fields present when null. */
  authType: z.enum(['password', 'v3password', 'v3applicationcredential', 'application_credential']).nullable().default(null),
  auth: openstackAuthSchema.prefault({}),
  /** Catalog interface; null takes clouds.yaml's / `OS_INTERFACE`, else `internal`. */
  interface: z.enum(['public', 'internal', 'admin']).nullable().default(null),
  regionName: nullableString,
  /** CA bundle for TLS to Keystone and the services. */
  cacert: nullableString,
  /** false turns TLS verification off (as clouds.yaml's `verify: false`); null takes clouds.yaml's. */
  verify: z.boolean().nullable().default(null),
  /** Per request: connect + response headers + body. */
  timeoutSeconds: z.number().positive().max(300).default(10),
  /** Attempts for connection errors and 5xx on idempotent requests (1 = no retry). */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  retryBaseDelaySeconds: z.number().positive().max(60).default(0.5),
  retryMaxDelaySeconds: z.number().positive().max(600).default(8),
  /** Re-authenticate this long before the token expires. */
  tokenRefreshMarginSeconds: z.number().min(0).max(3600).default(120),
  /** Responses larger than this are refused (a misbehaving proxy must not exhaust memory). */
  maxResponseBytes: z.number().int().positive().max(256 * 1024 * 1024).default(8 * 1024 * 1024),
});

export type OpenStackConfig = z.infer<typeof openstackConfigSchema>;
export type OpenStackConfigInput = z.input<typeof openstackConfigSchema>;
