import { z } from 'zod';

/**
 * How the agent reaches OpenStack. Everything is optional: credentials may come from
 * clouds.yaml (`cloud`, or `OS_CLOUD`), from `OS_*` environment variables, or from `auth` here;
 * fields set here win over both. With no auth URL anywhere, OpenStack features report
 * `not-configured` and do nothing.
 */
const nullableString = z.string().min(1).nullable().default(null);

const authField = (description: string) => nullableString.describe(description);

export const openstackAuthSchema = z.strictObject({
  authUrl: authField('Keystone URL, e.g. https://keystone.example.org:5000/v3 (clouds.yaml auth_url, OS_AUTH_URL).'),
  username: authField('User name (needs userDomainName or userDomainId).'),
  userId: authField('User ID (instead of username + domain).'),
  password: authField('Password (prefer clouds.yaml/secure.yaml or OS_PASSWORD; keep this file mode 0600 if set here).'),
  userDomainName: authField('Domain of the user, e.g. Default.'),
  userDomainId: authField('Domain ID of the user, e.g. default.'),
  projectName: authField('Project to scope the token to (needs projectDomainName or projectDomainId).'),
  projectId: authField('Project ID to scope the token to.'),
  projectDomainName: authField('Domain of the project.'),
  projectDomainId: authField('Domain ID of the project.'),
  domainName: authField('Both user and project domain when the specific ones are absent (as clouds.yaml).'),
  domainId: authField('Both user and project domain ID when the specific ones are absent.'),
  applicationCredentialId: authField('Application credential ID (auth type v3applicationcredential).'),
  applicationCredentialName: authField('Application credential name (with username or userId).'),
  applicationCredentialSecret: authField('Application credential secret.'),
});

export const openstackConfigSchema = z.strictObject({
  cloud: nullableString.describe('Name of a cloud in clouds.yaml; OS_CLOUD when null. With neither, OS_* variables (when OS_AUTH_URL is set) or `auth` below are used; without any, OpenStack features report not-configured.'),
  cloudsYamlPath: nullableString.describe("clouds.yaml to read; null: openstacksdk's search path (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, /etc/openstack/). secure.yaml beside it is merged."),
  authType: z
    .enum(['password', 'v3password', 'v3applicationcredential', 'application_credential'])
    .nullable()
    .default(null)
    .describe('Keystone v3 auth method; inferred from the fields present when null.'),
  auth: openstackAuthSchema.prefault({}).describe('Credential fields; each set here overrides clouds.yaml and OS_* variables.'),
  interface: z.enum(['public', 'internal', 'admin']).nullable().default(null).describe("Catalog interface; null takes clouds.yaml's / OS_INTERFACE, else internal."),
  regionName: nullableString.describe('Catalog region; null: any region.'),
  cacert: nullableString.describe('CA bundle for TLS to Keystone and the services.'),
  verify: z.boolean().nullable().default(null).describe("false turns TLS verification off (clouds.yaml verify: false); null takes clouds.yaml's / OS_INSECURE, else true."),
  timeoutSeconds: z.number().positive().max(300).default(10).describe('Limit of one HTTP request (connect, headers and body).'),
  maxAttempts: z.number().int().min(1).max(10).default(3).describe('Attempts for connection errors and 5xx on idempotent requests (1 = no retry).'),
  retryBaseDelaySeconds: z.number().positive().max(60).default(0.5).describe('First retry delay; doubles per attempt, with jitter.'),
  retryMaxDelaySeconds: z.number().positive().max(600).default(8).describe('Longest retry delay.'),
  tokenRefreshMarginSeconds: z.number().min(0).max(3600).default(120).describe('Re-authenticate this long before the token expires.'),
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .max(256 * 1024 * 1024)
    .default(8 * 1024 * 1024)
    .describe('Larger responses are refused (a misbehaving proxy must not exhaust memory).'),
});

export type OpenStackConfig = z.infer<typeof openstackConfigSchema>;
export type OpenStackConfigInput = z.input<typeof openstackConfigSchema>;
