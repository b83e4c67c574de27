/**
 * Real Nova API (Debian's `nova-api`, the `nova-api-wsgi` pbr script: wsgiref, single-threaded)
 * standalone: sqlite API and main databases, no message queue (`transport_url = fake://`: the
 * flavor API never casts), Keystone auth against the harness Keystone, and a `compute` catalog
 * entry (`http://127.0.0.1:PORT/v2.1`). Enough for flavors and their extra specs; nothing
 * schedules or boots.
 *
 * ```ts
 * const ks = await startKeystone();
 * const nova = await startNovaApi(ks);
 * t.teardown(async () => { await nova.stop(); await ks.stop(); });
 * await nova.createFlavor('vtpm.crb', { 'hw:tpm_version': '2.0', 'hw:tpm_model': 'tpm-crb' });
 * ```
 * The databases (`nova-manage api_db sync` + `db sync`, ~10 s) are built once per machine and
 * package version into a cached template.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireCommands } from './components.js';
import { cachedTemplate, packageVersion, PYTHON, type Keystone, type ManagedProcess } from './keystone.js';
import { adminClient, authtokenSection, serviceUser, startWsgiScript } from './wsgi-service.js';

export interface NovaApi {
  /** The compute endpoint, e.g. http://127.0.0.1:PORT/v2.1 */
  url: string;
  dir: string;
  logFile: string;
  /** Admin call; `microversion` defaults to 2.1 (no extra-spec validation, so any key can be set). */
  api<T = unknown>(method: string, apiPath: string, body?: unknown, microversion?: string): Promise<{ status: number; body: T }>;
  /** Creates a flavor (1 vCPU, 512 MiB, 1 GiB) with these extra specs; returns its id. */
  createFlavor(name: string, extraSpecs?: Record<string, string>, options?: { isPublic?: boolean }): Promise<string>;
  stop(): Promise<void>;
}

function novaConf(dir: string, extra: string[]): string {
  return [
    '[DEFAULT]',
    `log_file = ${dir}/nova.log`,
    `state_path = ${dir}`,
    // oslo.messaging's in-process driver: no RabbitMQ; the flavor API sends no RPC.
    'transport_url = fake://',
    'host = vtpm-test-nova-api',
    '[api_database]',
    `connection = sqlite:///${dir}/nova_api.db`,
    '[database]',
    `connection = sqlite:///${dir}/nova.db`,
    '[oslo_concurrency]',
    `lock_path = ${dir}/lock`,
    '[wsgi]',
    `api_paste_config = ${dir}/api-paste.ini`,
    ...extra,
    '',
  ].join('\n');
}

async function novaTemplate(): Promise<string> {
  return cachedTemplate(`vtpm-test-nova-api-${packageVersion('nova-api')}`, (dir) => {
    const conf = path.join(dir, 'nova.conf');
    writeFileSync(conf, novaConf(dir, []));
    for (const args of [['api_db', 'sync'], ['db', 'sync']]) {
      const r = spawnSync(PYTHON, ['/usr/bin/nova-manage', '--config-file', conf, ...args], { encoding: 'utf8', timeout: 180_000 });
      if (r.status !== 0) throw new Error(`nova-manage ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    }
    rmSync(conf);
    rmSync(path.join(dir, 'nova.log'), { force: true });
  });
}

export async function startNovaApi(ks: Keystone): Promise<NovaApi> {
  requireCommands('nova-api-wsgi', 'nova-manage');
  const template = await novaTemplate();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-nova-api-'));
  cpSync(template, dir, { recursive: true });
  mkdirSync(path.join(dir, 'lock'), { recursive: true });
  cpSync('/etc/nova/api-paste.ini', path.join(dir, 'api-paste.ini'));
  const password = await serviceUser(ks, 'nova');
  writeFileSync(path.join(dir, 'nova.conf'), novaConf(dir, ['[api]', 'auth_strategy = keystone', ...authtokenSection(ks, 'nova', password)]));
  let proc: ManagedProcess;
  let port: number;
  try {
    ({ port, proc } = await startWsgiScript('/usr/bin/nova-api-wsgi', { env: { ...process.env, OS_NOVA_CONFIG_DIR: dir }, dir }));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${port}/v2.1`;
  await ks.registerService('compute', url, { name: 'nova' });
  const call = adminClient(ks, url);
  const nova: NovaApi = {
    url,
    dir,
    logFile: path.join(dir, 'nova.log'),
    api: (method, apiPath, body, microversion = '2.1') => call(method, apiPath, body, { 'openstack-api-version': `compute ${microversion}` }),
    async createFlavor(name, extraSpecs = {}, options = {}) {
      const res = await nova.api<{ flavor: { id: string } }>('POST', '/flavors', {
        flavor: { name, ram: 512, vcpus: 1, disk: 1, 'os-flavor-access:is_public': options.isPublic ?? true },
      });
      if (res.status !== 200) throw new Error(`create flavor ${name}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      const id = res.body.flavor.id;
      if (Object.keys(extraSpecs).length) {
        const specs = await nova.api('POST', `/flavors/${id}/os-extra_specs`, { extra_specs: extraSpecs });
        if (specs.status !== 200) throw new Error(`extra specs of ${name}: HTTP ${specs.status} ${JSON.stringify(specs.body)}`);
      }
      return id;
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return nova;
}
