import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import type { NodeIdentity } from '../../src/identity/identity.js';
import { nodeIdentityProbe } from '../../src/probes/node-identity.js';
import { HostFacts } from '../../src/host/facts.js';
import { runProbe } from '../../src/probes/runner.js';
import type { ProbeResult } from '../../src/results.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { testStateFiles } from '../fixtures/state-files.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'vtpm-identity-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const UUID = '9a2f6c1e-0b7d-4e21-8f3a-6d5c4b3a2910';
const fqdn = execFileSync('hostname', ['--fqdn'], { encoding: 'utf8' }).trim();

function tree(name: string, files: Record<string, string>, libvirtdInContainer: boolean): string {
  const root = path.join(work, name);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  mkdirSync(path.join(root, 'proc/1'), { recursive: true });
  writeFileSync(path.join(root, 'proc/1/comm'), 'systemd\n');
  writeFileSync(path.join(root, 'proc/1/cmdline'), '/sbin/init\0');
  symlinkSync(root, path.join(root, 'proc/1/root'));
  if (libvirtdInContainer) {
    const cfs = path.join(work, `${name}-libvirt`);
    mkdirSync(path.join(cfs, 'var/log/swtpm'), { recursive: true });
    mkdirSync(path.join(root, 'proc/700'), { recursive: true });
    writeFileSync(path.join(root, 'proc/700/comm'), 'libvirtd\n');
    writeFileSync(path.join(root, 'proc/700/cmdline'), '/usr/sbin/libvirtd\0');
    symlinkSync(cfs, path.join(root, 'proc/700/root'));
  }
  return root;
}

async function run(hostRoot: string, identity: Record<string, unknown> = {}): Promise<ProbeResult<NodeIdentity>> {
  // A fixed provider name keeps virsh out of this unit test (the integration tests use the real one).
  const config = configSchema.parse({ hostRoot, identity: { providerName: 'compute-01.example.org', ...identity } });
  const results = new Map<string, ProbeResult>();
  const result = await runProbe(nodeIdentityProbe, {
    config,
    log: pino({ level: 'silent' }),
    hostPath: hostPathResolver(hostRoot),
    env: process.env,
    results: { get: <T>(name: string) => results.get(name) as ProbeResult<T> | undefined },
    stateFiles: testStateFiles(), facts: new HostFacts({ config: config, hostPath: hostPathResolver(hostRoot) }),
  });
  return result;
}

async function metricsText(result: ProbeResult<NodeIdentity>): Promise<string> {
  const registry = new Registry();
  nodeIdentityProbe.registerMetrics!(registry, { get: <T>(name: string) => (name === 'node-identity' ? (result as unknown as ProbeResult<T>) : undefined) });
  return registry.metrics();
}

t.test('identity from the host root: nova.conf host, compute_id, provider name; exported as vtpm_node_info', async (t) => {
  const root = tree('full', { 'etc/nova/nova.conf': '[DEFAULT]\nhost = compute-01.example.org\n', 'var/lib/nova/compute_id': `${UUID}\n` }, true);
  const result = await run(root);
  t.equal(result.ok, true);
  t.same(result.data!.novaHost, { value: 'compute-01.example.org', source: 'nova.conf' });
  t.same(result.data!.computeNodeUuid, { value: UUID, source: 'compute_id' });
  t.same(result.data!.providerName, { value: 'compute-01.example.org', source: 'config' });
  const text = await metricsText(result);
  t.match(text, `vtpm_node_info{nova_host="compute-01.example.org",compute_node_uuid="${UUID}",provider_name="compute-01.example.org"} 1`);
  t.match(text, 'vtpm_libvirt_container_path_reachable{path="/var/log/swtpm",reason=""} 1');
  t.match(text, 'vtpm_libvirt_container_path_reachable{path="/etc/libvirt/secrets",reason="PATH_MISSING"} 0');
  const section = nodeIdentityProbe.report!(result);
  t.equal(section.ok, true);
  t.match(section.summary, /unreachable: \/etc\/libvirt\/secrets \(PATH_MISSING\), \/var\/lib\/swtpm-localca \(PATH_MISSING\)/);
  t.same(section.table![0], ['fact', 'value', 'source / reason']);
});

t.test('a fixed novaHost wins over nova.conf; without nova.conf it is hostname --fqdn', async (t) => {
  const root = tree('fixed', { 'etc/nova/nova.conf': '[DEFAULT]\nhost = from-conf\n' }, false);
  t.same((await run(root, { novaHost: 'fixed.example.org' })).data!.novaHost, { value: 'fixed.example.org', source: 'config' });
  const bare = tree('bare', {}, false);
  const result = await run(bare);
  t.same(result.data!.novaHost, { value: fqdn, source: 'hostname --fqdn' });
  t.match(result.data!.computeNodeUuid, { value: null, error: /does not exist/ });
  t.equal(nodeIdentityProbe.report!(result).ok, true, 'no compute_id yet is not a fault (nova-compute has not run)');
  t.match(await metricsText(result), `vtpm_node_info{nova_host="${fqdn}",compute_node_uuid="",provider_name="compute-01.example.org"} 1`);
});

t.test('a garbled compute_id or a broken hostname command fail the section with the reason', async (t) => {
  const root = tree('garbled', { 'var/lib/nova/compute_id': 'garbage\n' }, false);
  const garbled = await run(root);
  t.match(garbled.data!.computeNodeUuid, { value: null, error: /does not hold a UUID/ });
  t.equal(nodeIdentityProbe.report!(garbled).ok, false);

  const noHostname = await run(tree('nohost', {}, false), { hostnamePath: path.join(work, 'no-such-hostname') });
  t.match(noHostname.data!.novaHost, { value: null, source: null, error: /not found/ });
  const section = nodeIdentityProbe.report!(noHostname);
  t.equal(section.ok, false);
  t.match(section.summary, /nova host unknown/);
  t.match(await metricsText(noHostname), 'vtpm_node_info{nova_host="",');
});

t.test('no result yet: no series, section not run', async (t) => {
  const registry = new Registry();
  nodeIdentityProbe.registerMetrics!(registry, { get: () => undefined });
  t.notMatch(await registry.metrics(), /^vtpm_node_info\{/m);
  t.same(nodeIdentityProbe.report!(undefined), { name: 'node-identity', ok: null, summary: 'not run yet', data: null });
});
