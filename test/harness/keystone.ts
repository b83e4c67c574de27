/**
 * Real Keystone (Debian's `keystone` package) for tests: sqlite, fernet tokens, on a free
 * loopback port in a temp dir, with the roles, projects and users a test asks for.
 *
 * ```ts
 * const ks = await startKeystone({ roles: ['service'], projects: ['service', 'tenant'],
 *   users: [{ name: 'agent', password: 'pw', project: 'service', roles: ['admin'] }] });
 * t.teardown(() => ks.stop());
 * ks.url                          // http://127.0.0.1:PORT/v3
 * ks.osEnv('agent')               // OS_* variables for that user
 * await ks.registerService('placement', 'http://127.0.0.1:8778');
 * await ks.revokeToken(token);    // the next use of that token gets 401
 * ```
 * Keystone on sqlite fails `role create` once it has served a `project create` (see
 * real-components.md §5), so all roles are created first; `createRole` afterwards throws.
 * Setup (db_sync + bootstrap, ~10 s) is done once per machine into a cached template.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { requireCommands } from './components.js';

export const PYTHON = '/usr/bin/python3';
export const ADMIN_PASSWORD = 'admin-s3cret';

/** A free loopback port (bound then released; the caller starts its server right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export interface ManagedProcess {
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

/** Starts a service in its own process group (so stop reaches its children), logging to a file. */
export function startProcess(file: string, args: string[], options: { env: NodeJS.ProcessEnv; logFile: string; cwd?: string }): ManagedProcess {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(file, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => running.delete(child));
  return {
    child,
    logFile: options.logFile,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Polls `url` until it answers with one of `ok` statuses; fails early when the process exits. */
export async function waitForHttp(url: string, proc: ManagedProcess, ok: number[] = [200, 300], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${url}: the service exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready; log tail:\n${tail(proc.logFile)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (ok.includes(res.status)) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`${url} not ready within ${timeoutMs} ms; log tail:\n${tail(proc.logFile)}`);
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  const r = spawnSync(file, args, { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr?.slice(-2000)}`);
}

/**
 * Builds something once per machine and version into `os.tmpdir()/<name>`: the first caller
 * builds in a private dir and renames it into place; concurrent callers wait for the rename.
 */
export async function cachedTemplate(name: string, build: (dir: string) => void): Promise<string> {
  const target = path.join(os.tmpdir(), name);
  if (existsSync(path.join(target, '.complete'))) return target;
  const lock = `${target}.lock`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(path.join(target, '.complete'))) return target;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock} (remove it if no test is running)`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (existsSync(path.join(target, '.complete'))) return target;
    const work = mkdtempSync(`${target}.build-`);
    try {
      build(work);
      writeFileSync(path.join(work, '.complete'), new Date().toISOString());
      rmSync(target, { recursive: true, force: true });
      renameSync(work, target);
    } catch (err) {
      rmSync(work, { recursive: true, force: true });
      throw err;
    }
    return target;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * WAL journal mode: a reader's lock no longer blocks writers. Keystone on sqlite leaks a read
 * transaction across requests (the "database is locked" on role/endpoint create after other
 * calls, real-components.md §5); with WAL those writes succeed. The mode is stored in the file.
 */
export function sqliteWal(dbFile: string): void {
  run(PYTHON, ['-c', `import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('PRAGMA journal_mode=WAL').fetchone()[0]); c.close()`, dbFile]);
}

export function packageVersion(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return (r.stdout || 'unknown').replace(/[^A-Za-z0-9.+-]/g, '_');
}

function keystoneConf(dir: string, expirationSeconds: number): string {
  return [
    '[DEFAULT]',
    `log_file = ${dir}/keystone.log`,
    '[database]',
    `connection = sqlite:///${dir}/keystone.db`,
    '[token]',
    'provider = fernet',
    `expiration = ${expirationSeconds}`,
    '[fernet_tokens]',
    `key_repository = ${dir}/fernet-keys`,
    '[fernet_receipts]',
    `key_repository = ${dir}/fernet-keys`,
    '[credential]',
    `key_repository = ${dir}/credential-keys`,
    '[oslo_policy]',
    'policy_dirs = /etc/keystone/policy.d',
    '',
  ].join('\n');
}

async function keystoneTemplate(): Promise<string> {
  return cachedTemplate(`vtpm-test-keystone-${packageVersion('keystone')}`, (dir) => {
    writeFileSync(path.join(dir, 'keystone.conf'), keystoneConf(dir, 3600));
    const km = (...args: string[]) => run(PYTHON, ['/usr/bin/keystone-manage', '--config-file', path.join(dir, 'keystone.conf'), ...args]);
    km('db_sync');
    km('fernet_setup', '--keystone-user', 'root', '--keystone-group', 'root');
    km('credential_setup', '--keystone-user', 'root', '--keystone-group', 'root');
    // No endpoint URLs here: the port differs per instance; the identity endpoints are added at start.
    km(
      'bootstrap',
      '--bootstrap-password', ADMIN_PASSWORD,
      '--bootstrap-username', 'admin',
      '--bootstrap-project-name', 'admin',
      '--bootstrap-role-name', 'admin',
      '--bootstrap-service-name', 'keystone',
      '--bootstrap-region-id', 'RegionOne',
    );
    rmSync(path.join(dir, 'keystone.log'), { force: true });
    sqliteWal(path.join(dir, 'keystone.db'));
  });
}

export interface KeystoneUser {
  name: string;
  password: string;
  /** Project the roles are granted on (and the user's default scope). */
  project?: string;
  roles?: string[];
}

export interface KeystoneOptions {
  /** Roles beyond reader/member/admin; `service` is always created. */
  roles?: string[];
  /** Projects beyond `admin`; `service` is always created. */
  projects?: string[];
  users?: KeystoneUser[];
  /** `[token] expiration` in seconds (default 3600). */
  tokenExpirationSeconds?: number;
}

export interface Keystone {
  /** The v3 URL, e.g. http://127.0.0.1:PORT/v3 */
  url: string;
  port: number;
  dir: string;
  logFile: string;
  ids: { users: Map<string, string>; projects: Map<string, string>; roles: Map<string, string> };
  /** Admin API call (JSON in/out); throws on a non-2xx status with the body. */
  api<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<T>;
  /** A project-scoped token for a user (the admin user when omitted). */
  issueToken(user?: { name: string; password: string; project: string }): Promise<string>;
  revokeToken(token: string): Promise<void>;
  createRole(name: string): Promise<string>;
  createProject(name: string): Promise<string>;
  createUser(user: KeystoneUser): Promise<string>;
  grant(user: string, project: string, role: string): Promise<void>;
  revoke(user: string, project: string, role: string): Promise<void>;
  setPassword(user: string, password: string): Promise<void>;
  /** Creates a service with public/internal/admin endpoints in RegionOne (or `region`). */
  registerService(type: string, url: string, options?: { name?: string; region?: string; interfaces?: string[] }): Promise<string>;
  /** Application credential of `user` (scoped to the user's project). */
  createApplicationCredential(user: KeystoneUser, name: string): Promise<{ id: string; secret: string }>;
  /** `OS_*` variables for a user, as Atmosphere's `nova-keystone-user` Secret holds them. */
  osEnv(user: KeystoneUser | string): Record<string, string>;
  /** A clouds.yaml document with one cloud named `name` for the user. */
  cloudsYaml(user: KeystoneUser | string, name?: string, extra?: Record<string, unknown>): string;
  stop(): Promise<void>;
}

export async function startKeystone(options: KeystoneOptions = {}): Promise<Keystone> {
  requireCommands('keystone-manage', 'keystone-wsgi-public');
  const template = await keystoneTemplate();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-keystone-'));
  cpSync(template, dir, { recursive: true });
  const conf = path.join(dir, 'keystone.conf');
  writeFileSync(conf, keystoneConf(dir, options.tokenExpirationSeconds ?? 3600));
  const env = { ...process.env, OS_KEYSTONE_CONFIG_FILES: conf };
  let proc: ManagedProcess | undefined;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    proc = startProcess(PYTHON, ['/usr/bin/keystone-wsgi-public', '--host', '127.0.0.1', '--port', String(port)], { env, logFile: path.join(dir, 'wsgi.log') });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v3`, proc);
      break;
    } catch (err) {
      await proc.stop();
      if (attempt >= 3 || !/Address already in use/.test(String((err as Error).message))) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  const url = `http://127.0.0.1:${port}/v3`;
  const users = new Map<string, KeystoneUser>([['admin', { name: 'admin', password: ADMIN_PASSWORD, project: 'admin', roles: ['admin'] }]]);
  const ids = { users: new Map<string, string>(), projects: new Map<string, string>(), roles: new Map<string, string>() };
  let adminToken: string | null = null;
  let projectsCreated = false;

  const issueToken = async (user?: { name: string; password: string; project: string }): Promise<string> => {
    const u = user ?? { name: 'admin', password: ADMIN_PASSWORD, project: 'admin' };
    const res = await fetch(`${url}/auth/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        auth: {
          identity: { methods: ['password'], password: { user: { name: u.name, domain: { id: 'default' }, password: u.password } } },
          scope: { project: { name: u.project, domain: { id: 'default' } } },
        },
      }),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`token for ${u.name}: HTTP ${res.status} ${text}`);
    return res.headers.get('x-subject-token')!;
  };

  const api = async <T>(method: string, apiPath: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> => {
    adminToken ??= await issueToken();
    const res = await fetch(`${url}${apiPath}`, {
      method,
      headers: { 'x-auth-token': adminToken, 'content-type': 'application/json', ...extraHeaders },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`keystone ${method} ${apiPath}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  };

  const lookup = (map: Map<string, string>, kind: string, name: string): string => {
    const id = map.get(name);
    if (!id) throw new Error(`keystone harness: unknown ${kind} ${name}`);
    return id;
  };

  const ks: Keystone = {
    url,
    port,
    dir,
    logFile: path.join(dir, 'keystone.log'),
    ids,
    api,
    issueToken,
    async revokeToken(token) {
      await api('DELETE', '/auth/tokens', undefined, { 'x-subject-token': token });
    },
    async createRole(name) {
      if (projectsCreated) throw new Error(`keystone harness: create role ${name} before any project (sqlite locks role create after project create)`);
      const r = await api<{ role: { id: string } }>('POST', '/roles', { role: { name } });
      ids.roles.set(name, r.role.id);
      return r.role.id;
    },
    async createProject(name) {
      projectsCreated = true;
      const r = await api<{ project: { id: string } }>('POST', '/projects', { project: { name, domain_id: 'default' } });
      ids.projects.set(name, r.project.id);
      return r.project.id;
    },
    async createUser(user) {
      const r = await api<{ user: { id: string } }>('POST', '/users', {
        user: { name: user.name, password: user.password, domain_id: 'default', ...(user.project ? { default_project_id: lookup(ids.projects, 'project', user.project) } : {}) },
      });
      ids.users.set(user.name, r.user.id);
      users.set(user.name, user);
      for (const role of user.roles ?? []) await ks.grant(user.name, user.project!, role);
      return r.user.id;
    },
    async grant(user, project, role) {
      await api('PUT', `/projects/${lookup(ids.projects, 'project', project)}/users/${lookup(ids.users, 'user', user)}/roles/${lookup(ids.roles, 'role', role)}`);
    },
    async revoke(user, project, role) {
      await api('DELETE', `/projects/${lookup(ids.projects, 'project', project)}/users/${lookup(ids.users, 'user', user)}/roles/${lookup(ids.roles, 'role', role)}`);
    },
    async setPassword(user, password) {
      await api('PATCH', `/users/${lookup(ids.users, 'user', user)}`, { user: { password } });
      const u = users.get(user);
      if (u) u.password = password;
    },
    async registerService(type, serviceUrl, opts = {}) {
      const s = await api<{ service: { id: string } }>('POST', '/services', { service: { type, name: opts.name ?? type, enabled: true } });
      for (const iface of opts.interfaces ?? ['public', 'internal', 'admin']) {
        await api('POST', '/endpoints', { endpoint: { service_id: s.service.id, interface: iface, url: serviceUrl, region_id: opts.region ?? 'RegionOne', enabled: true } });
      }
      return s.service.id;
    },
    async createApplicationCredential(user, name) {
      const token = await issueToken({ name: user.name, password: user.password, project: user.project! });
      const res = await fetch(`${url}/users/${lookup(ids.users, 'user', user.name)}/application_credentials`, {
        method: 'POST',
        headers: { 'x-auth-token': token, 'content-type': 'application/json' },
        body: JSON.stringify({ application_credential: { name } }),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`application credential: HTTP ${res.status} ${text}`);
      const ac = JSON.parse(text).application_credential as { id: string; secret: string };
      return { id: ac.id, secret: ac.secret };
    },
    osEnv(userOrName) {
      const u = typeof userOrName === 'string' ? users.get(userOrName) : userOrName;
      if (!u) throw new Error(`keystone harness: unknown user ${String(userOrName)}`);
      return {
        OS_AUTH_URL: url,
        OS_USERNAME: u.name,
        OS_PASSWORD: u.password,
        OS_PROJECT_NAME: u.project ?? 'admin',
        OS_USER_DOMAIN_NAME: 'Default',
        OS_PROJECT_DOMAIN_NAME: 'Default',
        OS_INTERFACE: 'internal',
        OS_REGION_NAME: 'RegionOne',
        OS_IDENTITY_API_VERSION: '3',
      };
    },
    cloudsYaml(userOrName, name = 'test', extra = {}) {
      const u = typeof userOrName === 'string' ? users.get(userOrName) : userOrName;
      if (!u) throw new Error(`keystone harness: unknown user ${String(userOrName)}`);
      return JSON.stringify({
        clouds: {
          [name]: {
            auth: { auth_url: url, username: u.name, password: u.password, project_name: u.project ?? 'admin', user_domain_name: 'Default', project_domain_name: 'Default' },
            region_name: 'RegionOne',
            interface: 'internal',
            identity_api_version: 3,
            ...extra,
          },
        },
      });
    },
    async stop() {
      await proc!.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    // Names → ids of what bootstrap made.
    for (const r of (await api<{ roles: Array<{ id: string; name: string }> }>('GET', '/roles')).roles) ids.roles.set(r.name, r.id);
    for (const p of (await api<{ projects: Array<{ id: string; name: string }> }>('GET', '/projects')).projects) ids.projects.set(p.name, p.id);
    for (const u of (await api<{ users: Array<{ id: string; name: string }> }>('GET', '/users')).users) ids.users.set(u.name, u.id);
    const regions = (await api<{ regions: Array<{ id: string }> }>('GET', '/regions')).regions;
    if (!regions.some((r) => r.id === 'RegionOne')) await api('POST', '/regions', { region: { id: 'RegionOne' } });
    await ks.registerService('identity', url, { name: 'keystone' });
    for (const role of new Set(['service', ...(options.roles ?? [])])) if (!ids.roles.has(role)) await ks.createRole(role);
    for (const project of new Set(['service', ...(options.projects ?? [])])) if (!ids.projects.has(project)) await ks.createProject(project);
    for (const user of options.users ?? []) await ks.createUser(user);
    // Re-issue the admin token: the first one predates the identity endpoints in the catalog.
    adminToken = null;
  } catch (err) {
    const log = `${tail(ks.logFile, 10)}\nwsgi.log tail:\n${tail(path.join(dir, "wsgi.log"), 25)}`;
    await ks.stop();
    throw new Error(`${(err as Error).message}\nkeystone.log tail:\n${log}`);
  }
  return ks;
}
