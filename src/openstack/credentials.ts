/**
 * Resolves OpenStack credentials the way operators already keep them: clouds.yaml (openstacksdk's
 * search path), `OS_*` environment variables, or the agent's own configuration. Pure except for
 * reading clouds.yaml; the result is one typed value that the session uses.
 */
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AgentError } from '../errors.js';
import type { OpenStackConfig } from './config.js';

export type EndpointInterface = 'public' | 'internal' | 'admin';

export type DomainRef = { id: string } | { name: string };

export type AuthMethod =
  | { type: 'password'; user: { id: string } | { name: string; domain: DomainRef }; password: string }
  | { type: 'application_credential'; id: string; secret: string }
  | { type: 'application_credential'; name: string; user: { id: string } | { name: string; domain: DomainRef }; secret: string };

export type ProjectScope = { id: string } | { name: string; domain: DomainRef };

export interface ResolvedCloud {
  /** Where the credentials came from, for status output (never the secret). */
  source: string;
  authUrl: string;
  method: AuthMethod;
  /** Application credentials carry their own scope. */
  scope: ProjectScope | null;
  interface: EndpointInterface;
  region: string | null;
  cacert: string | null;
  verify: boolean;
  /** e.g. a secrets file readable by others; logged once by the caller. */
  warnings: string[];
}

/** The flat field set every source is normalised into (clouds.yaml's auth keys, camel-cased). */
interface Fields {
  authUrl?: string;
  username?: string;
  userId?: string;
  password?: string;
  userDomainName?: string;
  userDomainId?: string;
  projectName?: string;
  projectId?: string;
  projectDomainName?: string;
  projectDomainId?: string;
  domainName?: string;
  domainId?: string;
  applicationCredentialId?: string;
  applicationCredentialName?: string;
  applicationCredentialSecret?: string;
  authType?: string;
  interface?: string;
  regionName?: string;
  cacert?: string;
  verify?: boolean;
}

const AUTH_KEYS: Record<string, keyof Fields> = {
  auth_url: 'authUrl',
  username: 'username',
  user_id: 'userId',
  password: 'password',
  user_domain_name: 'userDomainName',
  user_domain_id: 'userDomainId',
  project_name: 'projectName',
  tenant_name: 'projectName',
  project_id: 'projectId',
  tenant_id: 'projectId',
  project_domain_name: 'projectDomainName',
  project_domain_id: 'projectDomainId',
  domain_name: 'domainName',
  domain_id: 'domainId',
  application_credential_id: 'applicationCredentialId',
  application_credential_name: 'applicationCredentialName',
  application_credential_secret: 'applicationCredentialSecret',
};

const ENV_KEYS: Record<string, keyof Fields> = {
  OS_AUTH_URL: 'authUrl',
  OS_USERNAME: 'username',
  OS_USER_ID: 'userId',
  OS_PASSWORD: 'password',
  OS_USER_DOMAIN_NAME: 'userDomainName',
  OS_USER_DOMAIN_ID: 'userDomainId',
  OS_PROJECT_NAME: 'projectName',
  OS_TENANT_NAME: 'projectName',
  OS_PROJECT_ID: 'projectId',
  OS_TENANT_ID: 'projectId',
  OS_PROJECT_DOMAIN_NAME: 'projectDomainName',
  OS_PROJECT_DOMAIN_ID: 'projectDomainId',
  OS_DOMAIN_NAME: 'domainName',
  OS_DOMAIN_ID: 'domainId',
  OS_APPLICATION_CREDENTIAL_ID: 'applicationCredentialId',
  OS_APPLICATION_CREDENTIAL_NAME: 'applicationCredentialName',
  OS_APPLICATION_CREDENTIAL_SECRET: 'applicationCredentialSecret',
  OS_AUTH_TYPE: 'authType',
  OS_INTERFACE: 'interface',
  OS_ENDPOINT_TYPE: 'interface',
  OS_REGION_NAME: 'regionName',
  OS_CACERT: 'cacert',
};

function configError(message: string, details: Record<string, unknown> = {}): AgentError {
  return new AgentError('VTPM_ERR_OPENSTACK_CONFIG', message, { details });
}

/** openstacksdk's search order (os-client-config): env override, cwd, user config, /etc. */
export function cloudsYamlSearchPath(env: NodeJS.ProcessEnv, file: 'clouds' | 'secure' = 'clouds'): string[] {
  const override = file === 'clouds' ? env.OS_CLIENT_CONFIG_FILE : env.OS_CLIENT_SECURE_FILE;
  const home = env.HOME ?? os.homedir();
  const userDir = path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'openstack');
  const dirs = [process.cwd(), userDir, '/etc/openstack'];
  const names = [`${file}.yaml`, `${file}.yml`];
  return [...(override ? [override] : []), ...dirs.flatMap((d) => names.map((n) => path.join(d, n)))];
}

interface LoadedYaml {
  path: string;
  clouds: Record<string, unknown>;
  mode: number;
}

function readCloudsFile(file: string): LoadedYaml | null {
  let text: string;
  let mode: number;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw configError(`cannot read ${file}: ${(err as Error).message}`, { path: file });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw configError(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { path: file });
  }
  if (doc === null || doc === undefined) return { path: file, clouds: {}, mode };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw configError(`${file}: top level must be a mapping`, { path: file });
  const clouds = (doc as Record<string, unknown>).clouds ?? {};
  if (typeof clouds !== 'object' || clouds === null || Array.isArray(clouds)) throw configError(`${file}: "clouds" must be a mapping`, { path: file });
  return { path: file, clouds: clouds as Record<string, unknown>, mode };
}

function firstExisting(paths: string[]): LoadedYaml | null {
  for (const p of paths) {
    const loaded = readCloudsFile(p);
    if (loaded) return loaded;
  }
  return null;
}

function asString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  throw configError(`${where} must be a string`);
}

function asBool(value: unknown, where: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|yes|1)$/i.test(value)) return true;
  if (typeof value === 'string' && /^(false|no|0)$/i.test(value)) return false;
  throw configError(`${where} must be true or false`);
}

function fieldsFromCloudEntry(entry: unknown, where: string): Fields {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw configError(`${where} must be a mapping`);
  const e = entry as Record<string, unknown>;
  const fields: Fields = {};
  const auth = e.auth ?? {};
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth)) throw configError(`${where}.auth must be a mapping`);
  for (const [key, value] of Object.entries(auth as Record<string, unknown>)) {
    const target = AUTH_KEYS[key];
    if (target) (fields as Record<string, unknown>)[target] = asString(value, `${where}.auth.${key}`);
  }
  fields.authType = asString(e.auth_type, `${where}.auth_type`);
  fields.interface = asString(e.interface ?? e.endpoint_type, `${where}.interface`);
  fields.regionName = asString(e.region_name, `${where}.region_name`);
  fields.cacert = asString(e.cacert, `${where}.cacert`);
  const verify = asBool(e.verify, `${where}.verify`);
  const insecure = asBool(e.insecure, `${where}.insecure`);
  fields.verify = verify ?? (insecure === undefined ? undefined : !insecure);
  const version = asString(e.identity_api_version, `${where}.identity_api_version`);
  if (version !== undefined && !version.startsWith('3')) throw configError(`${where}.identity_api_version is ${version}; only Keystone v3 is supported`);
  return fields;
}

function merge(...layers: Fields[]): Fields {
  const out: Fields = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

function fieldsFromEnv(env: NodeJS.ProcessEnv): Fields {
  const fields: Fields = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value) (fields as Record<string, unknown>)[key] ??= value;
  }
  if (env.OS_INSECURE !== undefined) fields.verify = !/^(true|yes|1)$/i.test(env.OS_INSECURE);
  return fields;
}

function fieldsFromConfig(config: OpenStackConfig): Fields {
  const fields: Fields = {};
  for (const [k, v] of Object.entries(config.auth)) if (v !== null) (fields as Record<string, unknown>)[k] = v;
  if (config.authType) fields.authType = config.authType;
  if (config.interface) fields.interface = config.interface;
  if (config.regionName) fields.regionName = config.regionName;
  if (config.cacert) fields.cacert = config.cacert;
  if (config.verify !== null) fields.verify = config.verify;
  return fields;
}

function domain(id: string | undefined, name: string | undefined): DomainRef | null {
  if (id) return { id };
  if (name) return { name };
  return null;
}

function normaliseInterface(value: string | undefined): EndpointInterface {
  if (value === undefined) return 'internal';
  const v = value.replace(/URL$/i, '').toLowerCase();
  if (v === 'public' || v === 'internal' || v === 'admin') return v;
  throw configError(`interface "${value}" is not one of public, internal, admin`);
}

function buildUser(f: Fields): { id: string } | { name: string; domain: DomainRef } | null {
  if (f.userId) return { id: f.userId };
  if (!f.username) return null;
  const d = domain(f.userDomainId ?? f.domainId, f.userDomainName ?? f.domainName);
  if (!d) throw configError(`username "${f.username}" needs a user domain (user_domain_name / user_domain_id or OS_USER_DOMAIN_NAME)`);
  return { name: f.username, domain: d };
}

function toResolved(f: Fields, source: string, warnings: string[]): ResolvedCloud {
  if (!f.authUrl) throw configError(`${source}: auth_url is missing`);
  let authUrl: URL;
  try {
    authUrl = new URL(f.authUrl);
  } catch {
    throw configError(`${source}: auth_url "${f.authUrl}" is not a URL`);
  }
  if (authUrl.protocol !== 'http:' && authUrl.protocol !== 'https:') throw configError(`${source}: auth_url must be http or https`);
  const type = (f.authType ?? '').replace(/^v3/, '').replace('applicationcredential', 'application_credential');
  const wantsAppCred = type === 'application_credential' || (!type && (f.applicationCredentialId || f.applicationCredentialName));
  let method: AuthMethod;
  let scope: ProjectScope | null = null;
  if (wantsAppCred) {
    if (!f.applicationCredentialSecret) throw configError(`${source}: application_credential_secret is missing`);
    if (f.applicationCredentialId) {
      method = { type: 'application_credential', id: f.applicationCredentialId, secret: f.applicationCredentialSecret };
    } else if (f.applicationCredentialName) {
      const user = buildUser(f);
      if (!user) throw configError(`${source}: application_credential_name needs username or user_id`);
      method = { type: 'application_credential', name: f.applicationCredentialName, user, secret: f.applicationCredentialSecret };
    } else {
      throw configError(`${source}: application_credential_id or application_credential_name is missing`);
    }
  } else {
    if (type && type !== 'password') throw configError(`${source}: auth_type "${f.authType}" is not supported (password, v3applicationcredential)`);
    const user = buildUser(f);
    if (!user) throw configError(`${source}: username or user_id is missing`);
    if (!f.password) throw configError(`${source}: password is missing`);
    method = { type: 'password', user, password: f.password };
    if (f.projectId) scope = { id: f.projectId };
    else if (f.projectName) {
      const d = domain(f.projectDomainId ?? f.domainId, f.projectDomainName ?? f.domainName);
      if (!d) throw configError(`${source}: project "${f.projectName}" needs a project domain (project_domain_name / project_domain_id)`);
      scope = { name: f.projectName, domain: d };
    } else {
      throw configError(`${source}: project_name or project_id is missing (Placement needs a project-scoped token)`);
    }
  }
  return {
    source,
    authUrl: authUrl.toString(),
    method,
    scope,
    interface: normaliseInterface(f.interface),
    region: f.regionName ?? null,
    cacert: f.cacert ?? null,
    verify: f.verify ?? true,
    warnings,
  };
}

function hasSecret(entry: unknown): boolean {
  const auth = (entry as { auth?: Record<string, unknown> } | null)?.auth;
  return !!auth && (auth.password !== undefined || auth.application_credential_secret !== undefined);
}

/** A secrets file that others can read is worth a warning (never an error: operators decide). */
export function permissionWarning(file: string, mode: number): string | null {
  if ((mode & 0o004) === 0) return null;
  return `${file} holds OpenStack secrets and is readable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 0600 or 0640 it`;
}

/**
 * The credentials to use, or null when none are configured anywhere. Precedence: a named cloud
 * (`openstack.cloud` or `OS_CLOUD`) from clouds.yaml (+ secure.yaml); otherwise `OS_*` variables
 * when `OS_AUTH_URL` is set; fields in the agent config override either.
 */
export function resolveCloud(config: OpenStackConfig, env: NodeJS.ProcessEnv = process.env): ResolvedCloud | null {
  const own = fieldsFromConfig(config);
  const cloudName = config.cloud ?? env.OS_CLOUD ?? null;
  const warnings: string[] = [];
  if (cloudName) {
    const paths = config.cloudsYamlPath ? [config.cloudsYamlPath] : cloudsYamlSearchPath(env);
    const clouds = firstExisting(paths);
    if (!clouds) throw configError(`cloud "${cloudName}" is configured but no clouds.yaml was found (looked in ${paths.join(', ')})`);
    const secure = firstExisting(config.cloudsYamlPath ? [path.join(path.dirname(config.cloudsYamlPath), 'secure.yaml')] : cloudsYamlSearchPath(env, 'secure'));
    const entry = clouds.clouds[cloudName];
    if (entry === undefined) {
      throw configError(`cloud "${cloudName}" is not in ${clouds.path} (clouds there: ${Object.keys(clouds.clouds).join(', ') || 'none'})`);
    }
    const secureEntry = secure?.clouds[cloudName];
    for (const [file, e] of [[clouds, entry], [secure, secureEntry]] as const) {
      if (file && e !== undefined && hasSecret(e)) {
        const w = permissionWarning(file.path, file.mode);
        if (w) warnings.push(w);
      }
    }
    const fields = merge(
      fieldsFromCloudEntry(entry, `${clouds.path}: clouds.${cloudName}`),
      secureEntry === undefined ? {} : fieldsFromCloudEntry(secureEntry, `${secure!.path}: clouds.${cloudName}`),
      own,
    );
    return toResolved(fields, `clouds.yaml ${clouds.path} (cloud ${cloudName})`, warnings);
  }
  if (env.OS_AUTH_URL) return toResolved(merge(fieldsFromEnv(env), own), 'OS_* environment', warnings);
  if (own.authUrl) return toResolved(own, 'agent configuration (openstack.auth)', warnings);
  return null;
}

/** Names a credential without its secret, for logs and status. */
export function describeCloud(cloud: ResolvedCloud): Record<string, unknown> {
  const m = cloud.method;
  const user = m.type === 'password' || 'user' in m ? ('id' in m.user ? { id: m.user.id } : { name: m.user.name }) : undefined;
  return {
    source: cloud.source,
    authUrl: cloud.authUrl,
    authType: m.type,
    ...(user ? { user } : {}),
    ...(m.type === 'application_credential' && 'id' in m ? { applicationCredentialId: m.id } : {}),
    ...(cloud.scope ? { project: 'id' in cloud.scope ? { id: cloud.scope.id } : { name: cloud.scope.name } } : {}),
    interface: cloud.interface,
    region: cloud.region,
    verify: cloud.verify,
  };
}
