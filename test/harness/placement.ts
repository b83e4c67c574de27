/**
 * Real Placement (Debian's `placement-api`, wsgiref, single-threaded as sqlite needs) wired to a
 * harness Keystone: its service user, `[api] auth_strategy = keystone`, and a `placement`
 * catalog entry (public/internal/admin, RegionOne).
 *
 * ```ts
 * const ks = await startKeystone({ users: [...] });
 * const pl = await startPlacement(ks);
 * t.teardown(async () => { await pl.stop(); await ks.stop(); });
 * const rp = await pl.createProvider('compute-01.example.org');
 * await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_2_0']);
 * await pl.stopServer(); await pl.startServer();   // outage and recovery, same port and data
 * ```
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TpmVersion } from '../../src/libvirt/facts.js';
import { computeVerdict, type Verdict } from '../../src/verdict.js';
import { capturedDomcaps, hostFacts, swtpmFacts } from '../fixtures/debian12-facts.js';
import { requireCommands } from './components.js';
import { cachedTemplate, freePort, PYTHON, sqliteWal, startProcess, waitForHttp, type Keystone, type ManagedProcess } from './keystone.js';
import { adminClient } from './wsgi-service.js';

export const PLACEMENT_MICROVERSION = '1.39';

export interface PlacementOptions {
  /**
   * keystonemiddleware's in-process token cache (default 300 s, as deployments run it: a GET
   * costs ~35 ms instead of ~0.8 s with sqlite Keystone validating every request). -1 validates
   * every request, so a revoked token is refused at once (401 tests).
   */
  tokenCacheSeconds?: number;
}

export interface Provider {
  uuid: string;
  name: string;
  generation: number;
}

export interface Placement {
  /** Endpoint root, e.g. http://127.0.0.1:PORT */
  url: string;
  port: number;
  dir: string;
  logFile: string;
  /** Admin call with microversion 1.39; returns status and parsed body (no throw on 4xx). */
  api<T = unknown>(method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: T }>;
  createProvider(name: string, uuid?: string): Promise<Provider>;
  getTraits(uuid: string): Promise<{ traits: string[]; generation: number }>;
  /** Replaces the provider's traits (creating CUSTOM_ ones), retrying on generation conflicts. */
  setTraits(uuid: string, traits: string[]): Promise<void>;
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

function placementConf(dir: string, ks: Keystone, password: string, tokenCacheSeconds: number): string {
  return [
    '[DEFAULT]',
    'debug = false',
    `log_file = ${dir}/placement.log`,
    '[api]',
    'auth_strategy = keystone',
    '[placement_database]',
    `connection = sqlite:///${dir}/placement.db`,
    '[oslo_policy]',
    'policy_dirs = /etc/placement/policy.d',
    '[keystone_authtoken]',
    `www_authenticate_uri = ${ks.url}`,
    `auth_url = ${ks.url}`,
    'auth_type = password',
    'username = placement',
    `password = ${password}`,
    'project_name = service',
    'user_domain_name = Default',
    'project_domain_name = Default',
    `token_cache_time = ${tokenCacheSeconds}`,
    'http_connect_timeout = 10',
    '',
  ].join('\n');
}

async function placementTemplate(): Promise<string> {
  return cachedTemplate('vtpm-test-placement-8', (dir) => {
    const conf = path.join(dir, 'placement.conf');
    writeFileSync(conf, ['[placement_database]', `connection = sqlite:///${dir}/placement.db`, ''].join('\n'));
    const r = spawnSync(PYTHON, ['/usr/bin/placement-manage', '--config-file', conf, 'db', 'sync'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`placement-manage db sync failed: ${r.stderr}`);
    sqliteWal(path.join(dir, 'placement.db'));
    rmSync(conf);
  });
}

export async function startPlacement(ks: Keystone, options: PlacementOptions = {}): Promise<Placement> {
  requireCommands('placement-api', 'placement-manage');
  const template = await placementTemplate();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-placement-'));
  cpSync(template, dir, { recursive: true });
  const servicePassword = `placement-${Math.random().toString(36).slice(2)}`;
  if (!ks.ids.users.has('placement')) await ks.createUser({ name: 'placement', password: servicePassword, project: 'service', roles: ['service'] });
  else await ks.setPassword('placement', servicePassword);
  writeFileSync(path.join(dir, 'placement.conf'), placementConf(dir, ks, servicePassword, options.tokenCacheSeconds ?? 300));
  const env = { ...process.env, OS_PLACEMENT_CONFIG_DIR: dir };
  let port = 0;
  let proc: ManagedProcess | null = null;

  const launch = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      if (!port) port = await freePort();
      proc = startProcess(PYTHON, ['/usr/bin/placement-api', '--host', '127.0.0.1', '--port', String(port)], { env, logFile: path.join(dir, 'wsgi.log') });
      try {
        await waitForHttp(`http://127.0.0.1:${port}/`, proc);
        return;
      } catch (err) {
        await proc.stop();
        proc = null;
        // A restart must keep its port (the catalog names it); only a first start may move.
        if (attempt >= 3 || !/Address already in use/.test(String((err as Error).message))) throw err;
        if (url) await new Promise((r) => setTimeout(r, 500));
        else port = 0;
      }
    }
  };

  let url = '';
  try {
    await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  url = `http://127.0.0.1:${port}`;
  await ks.registerService('placement', url);

  const api = adminClient(ks, url, { 'openstack-api-version': `placement ${PLACEMENT_MICROVERSION}` });

  const pl: Placement = {
    url,
    port,
    dir,
    logFile: path.join(dir, 'placement.log'),
    api,
    async createProvider(name, uuid) {
      const res = await api<{ uuid: string; name: string; generation: number }>('POST', '/resource_providers', { name, ...(uuid ? { uuid } : {}) });
      if (res.status !== 200) throw new Error(`create provider ${name}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return { uuid: res.body.uuid, name: res.body.name, generation: res.body.generation };
    },
    async getTraits(uuid) {
      const res = await api<{ traits: string[]; resource_provider_generation: number }>('GET', `/resource_providers/${uuid}/traits`);
      if (res.status !== 200) throw new Error(`get traits ${uuid}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return { traits: [...res.body.traits].sort(), generation: res.body.resource_provider_generation };
    },
    async setTraits(uuid, traits) {
      for (const trait of traits.filter((tr) => tr.startsWith('CUSTOM_'))) {
        const res = await api('PUT', `/traits/${trait}`);
        if (res.status !== 201 && res.status !== 204) throw new Error(`create trait ${trait}: HTTP ${res.status}`);
      }
      for (let attempt = 0; attempt < 20; attempt++) {
        const current = await pl.getTraits(uuid);
        const res = await api('PUT', `/resource_providers/${uuid}/traits`, { traits, resource_provider_generation: current.generation });
        if (res.status === 200) return;
        if (res.status !== 409) throw new Error(`set traits ${uuid}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      }
      throw new Error(`set traits ${uuid}: still conflicting after 20 attempts`);
    },
    async stopServer() {
      const p = proc as ManagedProcess | null;
      proc = null;
      await p?.stop();
    },
    async startServer() {
      if (proc) return;
      await launch();
    },
    async stop() {
      await pl.stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return pl;
}

// ---- Verdicts for reconciler tests: real computeVerdict over captured libvirt output ----


/**
 * The Debian 12 host (libvirt 9.0, QEMU 7.2, swtpm 0.7.1) as computeVerdict sees it; `failing`
 * lists TPM versions whose local emulation check failed; `noSwtpm` removes swtpm entirely.
 */
export function hostVerdict(options: { failing?: TpmVersion[]; noSwtpm?: boolean } = {}): Verdict {
  const swtpm = options.noSwtpm
    ? { binaries: { swtpm: null, swtpm_setup: null, swtpm_ioctl: null }, setupFeatures: null, socketFeatures: null, version: null, errors: [] }
    : swtpmFacts();
  return computeVerdict({
    domcaps: capturedDomcaps(),
    swtpm,
    host: hostFacts(),
    emulation: (['1.2', '2.0'] as const).map((version) =>
      options.failing?.includes(version)
        ? { version, level: 'basic' as const, ok: false, failedStep: 'startup', message: 'TPM_FAIL' }
        : { version, level: 'basic' as const, ok: true },
    ),
  });
}
