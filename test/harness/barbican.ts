/**
 * Real Barbican (Debian's `barbican-api`) behind real Keystone, for tests: the packaged paste
 * pipeline (`/v1: barbican-api-keystone`: authtoken + context), sqlite, simple_crypto, served by
 * a single-threaded wsgiref loader (sqlite and threads do not mix, real-components.md §4), on a
 * free loopback port in a temp dir with `HOME` pointing at its config.
 *
 * ```ts
 * const ks = await startKeystone({ projects: ['tenant'], users: [...] });
 * const bb = await startBarbican(ks);            // registers the key-manager endpoint
 * const id = await bb.createSecret(tenantToken, 'payload');
 * await bb.setNovaAccessPolicy(true);            // Atmosphere's override, hot-reloaded via policy_dirs
 * await bb.stop(); await bb.start();             // unavailability and recovery on the same port
 * ```
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { requireCommands } from './components.js';
import { ADMIN_PASSWORD, PYTHON, freePort, startProcess, waitForHttp, type Keystone, type ManagedProcess } from './keystone.js';

export interface Barbican {
  /** http://127.0.0.1:PORT (the catalog URL). */
  url: string;
  port: number;
  dir: string;
  logFile: string;
  /** Creates an opaque secret as the token's user/project; returns its UUID. */
  createSecret(token: string, payload: string, name?: string): Promise<string>;
  deleteSecret(token: string, uuid: string): Promise<void>;
  /** Barbican's answer to a token for a secret's metadata (status only). */
  statusFor(token: string, uuid: string): Promise<number>;
  /** Atmosphere's barbican_policy_nova_secret_access: `role:service` may get and decrypt secrets. */
  setNovaAccessPolicy(enabled: boolean): void;
  /** Stops the server (the port stays reserved for `start`). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops and removes everything. */
  close(): Promise<void>;
}

const PASTE = '/usr/share/barbican-common/barbican-api-paste.ini';

const LOADER = `import os, sys
from paste import deploy
application = deploy.loadapp('config:' + os.environ['BARBICAN_PASTE'], name='main')
if __name__ == '__main__':
    import wsgiref.simple_server as wss
    class Quiet(wss.WSGIRequestHandler):
        def log_message(self, *args):
            pass
    wss.make_server(sys.argv[1], int(sys.argv[2]), application, handler_class=Quiet).serve_forever()
`;

/** The rule Atmosphere's PR adds `role:service` to (legacy-compatible rules kept, as in real-components.md §4). */
const NOVA_ACCESS_RULE =
  'role:service or rule:secret_project_admin or (rule:secret_project_member and rule:secret_owner) or (rule:secret_project_member and rule:secret_is_not_private) or rule:secret_acl_read';

function conf(dir: string, port: number, ks: Keystone): string {
  return [
    '[DEFAULT]',
    'debug = false',
    `host_href = http://127.0.0.1:${port}`,
    `sql_connection = sqlite:///${dir}/barbican.db`,
    'db_auto_create = true',
    `log_file = ${dir}/barbican-api.log`,
    '[secretstore]',
    'namespace = barbican.secretstore.plugin',
    'enabled_secretstore_plugins = store_crypto',
    '[crypto]',
    'namespace = barbican.crypto.plugin',
    'enabled_crypto_plugins = simple_crypto',
    '[simple_crypto_plugin]',
    `kek = ${randomBytes(32).toString('base64')}`,
    '[queue]',
    'enable = false',
    '[oslo_policy]',
    'enforce_new_defaults = true',
    'enforce_scope = false',
    `policy_dirs = ${dir}/policy.d`,
    '[keystone_authtoken]',
    `www_authenticate_uri = ${ks.url}`,
    `auth_url = ${ks.url}`,
    'auth_type = password',
    'username = admin',
    `password = ${ADMIN_PASSWORD}`,
    'project_name = admin',
    'user_domain_name = Default',
    'project_domain_name = Default',
    'service_token_roles_required = true',
    // No cached validations: a revoked token must be refused at once, as tests expect.
    'token_cache_time = -1',
    '',
  ].join('\n');
}

export async function startBarbican(ks: Keystone): Promise<Barbican> {
  requireCommands('barbican-manage');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-barbican-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  mkdirSync(path.join(dir, '.barbican'));
  mkdirSync(path.join(dir, 'policy.d'));
  writeFileSync(path.join(dir, '.barbican', 'barbican.conf'), conf(dir, port, ks));
  copyFileSync(PASTE, path.join(dir, 'paste.ini'));
  writeFileSync(path.join(dir, 'wsgi.py'), LOADER);
  const env = { ...process.env, HOME: dir, BARBICAN_PASTE: path.join(dir, 'paste.ini') };
  const up = spawnSync(PYTHON, ['/usr/bin/barbican-manage', 'db', 'upgrade'], { env, encoding: 'utf8', timeout: 120_000 });
  if (up.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`barbican-manage db upgrade failed: ${up.stderr?.slice(-2000)}`);
  }
  const logFile = path.join(dir, 'wsgi.log');
  let proc: ManagedProcess | null = null;
  const start = async () => {
    proc = startProcess(PYTHON, [path.join(dir, 'wsgi.py'), '127.0.0.1', String(port)], { env, logFile, cwd: dir });
    await waitForHttp(`${url}/`, proc, [200, 300]);
  };
  const stop = async () => {
    await proc?.stop();
    proc = null;
  };
  try {
    await start();
    await ks.registerService('key-manager', url, { name: 'barbican' });
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const call = async (method: string, p: string, token: string, body?: unknown, accept = 'application/json') =>
    fetch(`${url}${p}`, {
      method,
      headers: { 'x-auth-token': token, accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });

  return {
    url,
    port,
    dir,
    logFile,
    async createSecret(token, payload, name = 'vTPM secret') {
      const res = await call('POST', '/v1/secrets', token, {
        name,
        secret_type: 'passphrase',
        algorithm: 'plain',
        payload: Buffer.from(payload).toString('base64'),
        payload_content_type: 'application/octet-stream',
        payload_content_encoding: 'base64',
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`create secret: HTTP ${res.status} ${text}`);
      const ref = (JSON.parse(text) as { secret_ref: string }).secret_ref;
      return ref.slice(ref.lastIndexOf('/') + 1);
    },
    async deleteSecret(token, uuid) {
      const res = await call('DELETE', `/v1/secrets/${uuid}`, token);
      await res.arrayBuffer();
      if (res.status !== 204) throw new Error(`delete secret: HTTP ${res.status}`);
    },
    async statusFor(token, uuid) {
      const res = await call('GET', `/v1/secrets/${uuid}`, token);
      await res.arrayBuffer();
      return res.status;
    },
    setNovaAccessPolicy(enabled) {
      const file = path.join(dir, 'policy.d', 'nova-secret-access.yaml');
      if (enabled) writeFileSync(file, `"secret:get": "${NOVA_ACCESS_RULE}"\n"secret:decrypt": "${NOVA_ACCESS_RULE}"\n`);
      else rmSync(file, { force: true });
    },
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
