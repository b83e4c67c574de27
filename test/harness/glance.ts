/**
 * Real Glance (Debian's `glance-api`, the `glance-wsgi-api` pbr script: wsgiref) standalone:
 * sqlite database, a file store in the temp dir, Keystone auth (`[paste_deploy] flavor =
 * keystone`) against the harness Keystone, and an `image` catalog entry.
 *
 * ```ts
 * const glance = await startGlance(ks);
 * t.teardown(() => glance.stop());
 * await glance.createImage('cirros-vtpm', { hw_tpm_version: '2.0', hw_tpm_model: 'tpm-crb' });
 * ```
 * The database (`glance-manage db_sync`, ~6 s) is built once per machine and package version.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireCommands } from './components.js';
import { cachedTemplate, packageVersion, PYTHON, type Keystone, type ManagedProcess } from './keystone.js';
import { adminClient, authtokenSection, serviceUser, startWsgiScript } from './wsgi-service.js';

export interface Glance {
  /** Endpoint root, e.g. http://127.0.0.1:PORT */
  url: string;
  dir: string;
  logFile: string;
  api<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Creates an image record with these properties (no data: it stays `queued`); returns its id. */
  createImage(name: string, properties?: Record<string, string>, options?: { visibility?: 'public' | 'private' | 'shared' | 'community' }): Promise<string>;
  /** Uploads `data` as the image's bits (the image becomes `active`). */
  upload(id: string, data: Buffer): Promise<void>;
  stop(): Promise<void>;
}

function glanceConf(dir: string, extra: string[]): string {
  return [
    '[DEFAULT]',
    `log_file = ${dir}/glance.log`,
    'enabled_backends = fs:file',
    '[database]',
    `connection = sqlite:///${dir}/glance.db`,
    '[glance_store]',
    'default_backend = fs',
    '[fs]',
    `filesystem_store_datadir = ${dir}/images`,
    '[os_glance_staging_store]',
    `filesystem_store_datadir = ${dir}/staging`,
    '[os_glance_tasks_store]',
    `filesystem_store_datadir = ${dir}/tasks`,
    '[oslo_concurrency]',
    `lock_path = ${dir}/lock`,
    ...extra,
    '',
  ].join('\n');
}

async function glanceTemplate(): Promise<string> {
  return cachedTemplate(`vtpm-test-glance-${packageVersion('glance-api')}`, (dir) => {
    const conf = path.join(dir, 'glance-api.conf');
    writeFileSync(conf, glanceConf(dir, []));
    const r = spawnSync(PYTHON, ['/usr/bin/glance-manage', '--config-file', conf, 'db_sync'], { encoding: 'utf8', timeout: 180_000 });
    if (r.status !== 0) throw new Error(`glance-manage db_sync failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    rmSync(conf);
    rmSync(path.join(dir, 'glance.log'), { force: true });
  });
}

export async function startGlance(ks: Keystone): Promise<Glance> {
  requireCommands('glance-wsgi-api', 'glance-manage');
  const template = await glanceTemplate();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-glance-'));
  cpSync(template, dir, { recursive: true });
  for (const sub of ['images', 'staging', 'tasks', 'lock']) mkdirSync(path.join(dir, sub), { recursive: true });
  cpSync('/etc/glance/glance-api-paste.ini', path.join(dir, 'glance-api-paste.ini'));
  const password = await serviceUser(ks, 'glance');
  writeFileSync(path.join(dir, 'glance-api.conf'), glanceConf(dir, ['[paste_deploy]', 'flavor = keystone', ...authtokenSection(ks, 'glance', password)]));
  let proc: ManagedProcess;
  let port: number;
  try {
    ({ port, proc } = await startWsgiScript('/usr/bin/glance-wsgi-api', { env: { ...process.env, OS_GLANCE_CONFIG_DIR: dir }, dir }));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${port}`;
  await ks.registerService('image', url, { name: 'glance' });
  const api = adminClient(ks, url);
  const glance: Glance = {
    url,
    dir,
    logFile: path.join(dir, 'glance.log'),
    api,
    async createImage(name, properties = {}, options = {}) {
      const res = await api<{ id: string }>('POST', '/v2/images', {
        name,
        disk_format: 'raw',
        container_format: 'bare',
        visibility: options.visibility ?? 'public',
        ...properties,
      });
      if (res.status !== 201) throw new Error(`create image ${name}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id;
    },
    async upload(id, data) {
      const token = await ks.issueToken();
      const res = await fetch(`${url}/v2/images/${id}/file`, {
        method: 'PUT',
        headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(data),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      if (res.status !== 204) throw new Error(`upload image ${id}: HTTP ${res.status} ${text.slice(0, 300)}`);
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return glance;
}
