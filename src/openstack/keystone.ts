/** Keystone v3 token requests: the body for each auth method and the parsed answer. */
import type { AuthMethod, DomainRef, ProjectScope, ResolvedCloud } from './credentials.js';
import { parseCatalog, type CatalogService } from './catalog.js';
import { OpenStackError } from './errors.js';

export interface TokenInfo {
  /** Never logged. */
  token: string;
  /** Unix ms. */
  expiresAt: number;
  issuedAt: number;
  catalog: CatalogService[];
  roles: string[];
  userId: string | null;
  projectId: string | null;
}

function domainJson(d: DomainRef): Record<string, string> {
  return 'id' in d ? { id: d.id } : { name: d.name };
}

function userJson(u: { id: string } | { name: string; domain: DomainRef }): Record<string, unknown> {
  return 'id' in u ? { id: u.id } : { name: u.name, domain: domainJson(u.domain) };
}

function identityJson(method: AuthMethod): Record<string, unknown> {
  if (method.type === 'password') {
    return { methods: ['password'], password: { user: { ...userJson(method.user), password: method.password } } };
  }
  const cred = 'id' in method ? { id: method.id, secret: method.secret } : { name: method.name, user: userJson(method.user), secret: method.secret };
  return { methods: ['application_credential'], application_credential: cred };
}

function scopeJson(scope: ProjectScope | null): Record<string, unknown> | undefined {
  if (!scope) return undefined;
  return { project: 'id' in scope ? { id: scope.id } : { name: scope.name, domain: domainJson(scope.domain) } };
}

/** The JSON body of `POST /v3/auth/tokens` (holds the secret: never log it). */
export function tokenRequestBody(cloud: ResolvedCloud): string {
  const scope = scopeJson(cloud.scope);
  return JSON.stringify({ auth: { identity: identityJson(cloud.method), ...(scope ? { scope } : {}) } });
}

/** `…/v3/auth/tokens` whether auth_url names the version or not. */
export function tokensUrl(authUrl: string): string {
  const base = authUrl.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? `${base}/auth/tokens` : `${base}/v3/auth/tokens`;
}

/** Parses a 201 answer; anything unexpected is a typed bad-response, never a crash. */
export function parseTokenResponse(subjectToken: string | undefined, text: string, now: number): TokenInfo {
  const bad = (why: string) => new OpenStackError({ kind: 'bad-response', service: 'identity', method: 'POST', path: '/v3/auth/tokens' }, `Keystone token response ${why}`);
  if (!subjectToken) throw bad('has no X-Subject-Token header');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw bad('is not JSON');
  }
  const token = (body as { token?: Record<string, unknown> } | null)?.token;
  if (!token || typeof token !== 'object') throw bad('has no "token" object');
  const expires = Date.parse(String(token.expires_at));
  if (!Number.isFinite(expires)) throw bad(`has an unreadable expires_at (${String(token.expires_at)})`);
  const issued = Date.parse(String(token.issued_at));
  const roles = Array.isArray(token.roles) ? token.roles.map((r) => (r as { name?: unknown })?.name).filter((n): n is string => typeof n === 'string') : [];
  const user = token.user as { id?: unknown } | undefined;
  const project = token.project as { id?: unknown } | undefined;
  return {
    token: subjectToken,
    expiresAt: expires,
    issuedAt: Number.isFinite(issued) ? issued : now,
    catalog: parseCatalog(token.catalog),
    roles,
    userId: typeof user?.id === 'string' ? user.id : null,
    projectId: typeof project?.id === 'string' ? project.id : null,
  };
}
