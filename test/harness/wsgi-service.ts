/**
 * What the OpenStack API harnesses (nova-api, glance; placement for its admin client) share: a service user in the harness
 * Keystone with its `[keystone_authtoken]` section, a pbr WSGI script started on a free loopback
 * port (wsgiref, single-threaded as sqlite needs), and an admin client for the test's own setup.
 */
import path from 'node:path';
import { freePort, PYTHON, startProcess, waitForHttp, type Keystone, type ManagedProcess } from './keystone.js';

/** Creates (or re-passwords) the service's user in project `service` with role `service`; returns its password. */
export async function serviceUser(ks: Keystone, name: string): Promise<string> {
  const password = `${name}-${Math.random().toString(36).slice(2)}`;
  if (!ks.ids.users.has(name)) await ks.createUser({ name, password, project: 'service', roles: ['service'] });
  else await ks.setPassword(name, password);
  return password;
}

/** keystonemiddleware settings for a service user of the harness Keystone. */
export function authtokenSection(ks: Keystone, user: string, password: string): string[] {
  return [
    '[keystone_authtoken]',
    `www_authenticate_uri = ${ks.url}`,
    `auth_url = ${ks.url}`,
    'auth_type = password',
    `username = ${user}`,
    `password = ${password}`,
    'project_name = service',
    'user_domain_name = Default',
    'project_domain_name = Default',
    'token_cache_time = 300',
    'http_connect_timeout = 10',
  ];
}

/** Starts `/usr/bin/<script> --host 127.0.0.1 --port PORT` on a free port, retrying when the port was taken meanwhile. */
export async function startWsgiScript(script: string, options: { env: NodeJS.ProcessEnv; dir: string; readyPath?: string }): Promise<{ port: number; proc: ManagedProcess }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = startProcess(PYTHON, [script, '--host', '127.0.0.1', '--port', String(port)], { env: options.env, logFile: path.join(options.dir, 'wsgi.log') });
    try {
      await waitForHttp(`http://127.0.0.1:${port}${options.readyPath ?? '/'}`, proc);
      return { port, proc };
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/Address already in use/.test(String((err as Error).message))) throw err;
    }
  }
}

/** An admin JSON client for one service (token from the harness Keystone, one re-issue on 401). */
export function adminClient(ks: Keystone, base: string, extraHeaders: Record<string, string> = {}) {
  let token: string | null = null;
  return async <T>(method: string, apiPath: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> => {
    for (let attempt = 0; attempt < 2; attempt++) {
      token ??= await ks.issueToken();
      const res = await fetch(`${base}${apiPath}`, {
        method,
        headers: { 'x-auth-token': token, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...extraHeaders, ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status === 401 && attempt === 0) {
        token = null;
        continue;
      }
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = text;
      }
      return { status: res.status, body: parsed as T };
    }
    throw new Error('unreachable');
  };
}
