/**
 * `vtpm-agent fleet` against real services: Keystone, Placement, Nova API (flavors), Glance
 * (images) from Debian packages, and a real Prometheus scraping real agents (in-process Agent
 * with the real libvirt, swtpm, host and node-identity probes; identities from configuration,
 * one agent with swtpm made unusable by configuration, one stopped). One agent's guest inventory
 * is a stand-in (a user-mode guest classified by the real at-risk rules): defining a real Nova
 * guest with a user-mode secret would need nova-compute.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { atRiskGuests } from '../../src/guests/classify.js';
import { guestInventoryProbe } from '../../src/probes/guest-inventory.js';
import { hostProbe } from '../../src/probes/host.js';
import { libvirtProbe } from '../../src/probes/libvirt.js';
import { nodeIdentityProbe } from '../../src/probes/node-identity.js';
import { swtpmProbe } from '../../src/probes/swtpm.js';
import type { Probe } from '../../src/probes/types.js';
import { guest, inventory } from '../fixtures/guests.js';
import { freePort, runCli, startAgent, waitFor, type RunningAgent } from '../harness/agent.js';
import { startGlance } from '../harness/glance.js';
import { startKeystone } from '../harness/keystone.js';
import { requireLibvirt } from '../harness/libvirt.js';
import { startNovaApi } from '../harness/nova-api.js';
import { startPlacement } from '../harness/placement.js';
import { startPrometheus } from '../harness/prometheus.js';

requireLibvirt();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-fleet-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

// Placement 8.0.0's os-traits predates COMPUTE_SECURITY_TPM_TIS/_CRB (os-traits 3.1.0): version traits only, as Nova < 2024.2 reports.
const ALL = ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0'];
const UUID = {
  a: '0a0a0a0a-0000-4000-8000-00000000000a',
  b: '0b0b0b0b-0000-4000-8000-00000000000b',
  c: '0c0c0c0c-0000-4000-8000-00000000000c',
  d: '0d0d0d0d-0000-4000-8000-00000000000d',
};

const ks = await startKeystone();
t.teardown(() => ks.stop());
const pl = await startPlacement(ks);
t.teardown(() => pl.stop());
const nova = await startNovaApi(ks);
t.teardown(() => nova.stop());
const glance = await startGlance(ks);
t.teardown(() => glance.stop());

const core: Probe[] = [libvirtProbe as Probe, swtpmProbe as Probe, hostProbe as Probe, nodeIdentityProbe as Probe];
async function agent(name: keyof typeof UUID, extra: string[] = [], probes: Probe[] = core): Promise<RunningAgent> {
  const computeId = path.join(tmp, `compute_id-${name}`);
  writeFileSync(computeId, `${UUID[name]}\n`);
  return startAgent(
    [
      `stateDir=${path.join(tmp, `state-${name}`)}`,
      `identity.providerName=host-${name}.example.org`,
      `identity.novaHost=host-${name}.example.org`,
      `identity.computeIdPath=${computeId}`,
      'placement.enabled=false',
      'barbican.enabled=false',
      ...extra,
    ],
    { probes },
  );
}
// host-b: a running user-mode vTPM guest (stand-in inventory, real at-risk classification).
const atRiskGuest = guest('1b1b1b1b-0000-4000-8000-000000000001');
const standInInventory: Probe = {
  ...(guestInventoryProbe as Probe),
  run: async () => ({ ...inventory([atRiskGuest]), atRisk: atRiskGuests([atRiskGuest], { libvirtVersion: '9.0.0', resumeGuestsStateOnHostBoot: true }) }),
};
const agents = {
  a: await agent('a'),
  // swtpm cannot be found: nothing is usable on host-b.
  b: await agent('b', ['swtpm.swtpmPath=/nonexistent/swtpm', 'swtpm.swtpmSetupPath=/nonexistent/swtpm_setup', 'swtpm.swtpmIoctlPath=/nonexistent/swtpm_ioctl'], [...core, standInInventory]),
  d: await agent('d'),
};
t.teardown(async () => {
  for (const a of Object.values(agents)) await a.stop();
});
const prom = await startPrometheus({ targets: Object.values(agents).map((a) => new URL(a.url).host), ruleFiles: [] });
t.teardown(() => prom.stop());
await waitFor(
  'Prometheus to scrape every agent with a verdict',
  async () => (await prom.query('count(vtpm_capability_usable) by (instance)')).length === 3 && (await prom.query('vtpm_node_info')).length === 3 && (await prom.query('vtpm_guests_at_risk > 0')).length === 1,
  90_000,
  500,
);

const env = { ...process.env, ...ks.osEnv('admin') };
delete env.OS_CLOUD;
const fleet = (args: string[], extraEnv: Record<string, string> = {}) => runCli(['fleet', '-c', '/dev/null', ...args], { env: { ...env, ...extraEnv }, timeoutMs: 180_000 });

t.test('a consistent cloud: exit 0, every provider listed, capacity verified by the agent', async (t) => {
  await pl.createProvider('host-a.example.org', UUID.a);
  await pl.setTraits(UUID.a, [...ALL, 'HW_CPU_X86_AVX']);
  await nova.createFlavor('m1.small');
  await nova.createFlavor('vtpm.crb', { 'hw:tpm_version': '2.0', 'hw:tpm_model': 'tpm-crb', 'hw:tpm_secret_security': 'host' });
  await glance.createImage('cirros-vtpm', { hw_tpm_version: '2.0', hw_tpm_model: 'tpm-crb' });
  await glance.createImage('cirros');

  const r = await fleet(['--json', '--prometheus', prom.url]);
  t.equal(r.code, 0, `exit 0; stderr: ${r.stderr}`);
  const report = JSON.parse(r.stdout);
  t.same(report.hosts.map((h: { provider: string }) => h.provider), ['host-a.example.org']);
  t.match(report.hosts[0], { uuid: UUID.a, fenced: false, agent: 'up', verifiedSource: 'agent', drift: [] });
  t.same(report.hosts[0].tpmTraits, ALL, 'only the vTPM traits are shown');
  t.same(report.hosts[0].verified, ['1.2/tpm-tis', '2.0/tpm-tis', '2.0/tpm-crb'], "this machine's real verdict: all three usable");
  t.match(report.capacity, [
    { version: '1.2', model: 'tpm-tis', advertised: 1, verified: 1, fenced: 0, ready: 1 },
    { version: '2.0', model: 'tpm-tis', advertised: 1, verified: 1, fenced: 0, ready: 1 },
    { version: '2.0', model: 'tpm-crb', advertised: 1, verified: 1, fenced: 0, ready: 1 },
  ]);
  t.same(report.requests.map((q: { source: string; name: string }) => `${q.source} ${q.name}`).sort(), ['flavor vtpm.crb', 'image cirros-vtpm'], 'only vTPM flavors and images');
  t.same(report.findings, []);
  t.equal(report.placement.fencingTraitExists, false);
  t.equal(report.prometheus.agents, 3);
  // One request per trait plus the listing and the trait lookup, however many hosts.
  t.ok(report.placement.requests <= 2 + 4 + 1 + 3, `${report.placement.requests} Placement requests`);

  const table = await fleet(['--prometheus', prom.url]);
  t.equal(table.code, 0);
  t.match(table.stdout, /host-a\.example\.org\s+1_2,2_0\s+no\s+up/);
  t.match(table.stdout, /Result: consistent/);
});

t.test('a cloud with problems: every provider, fencing, drift, agents down and missing, guests at risk, flavor and image findings (exit 1)', async (t) => {
  const b = await pl.createProvider('host-b.example.org', UUID.b);
  await pl.setTraits(b.uuid, ['COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_VTPM_DEGRADED']);
  const c = await pl.createProvider('host-c.example.org', UUID.c);
  await pl.setTraits(c.uuid, ['COMPUTE_SECURITY_TPM_2_0']);
  const d = await pl.createProvider('host-d.example.org', UUID.d);
  await pl.setTraits(d.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
  // A nested provider (a NUMA node or GPU) is not a compute host.
  const nested = await pl.api('POST', '/resource_providers', { name: 'host-a.example.org_NUMA0', parent_provider_uuid: UUID.a });
  t.equal(nested.status, 200);
  await pl.setTraits(UUID.a, ['COMPUTE_SECURITY_TPM_2_0']); // 1.2 usable, not advertised
  await agents.d.stop();
  await waitFor('Prometheus to see host-d down', async () => (await prom.query('up == 0')).length === 1, 30_000, 500);
  // CUSTOM_VTPM_DEGRADED now exists: fencing is in use, vTPM flavors must forbid it.
  await nova.createFlavor('vtpm.crb.fenced', { 'hw:tpm_version': '2.0', 'hw:tpm_model': 'tpm-crb', 'trait:CUSTOM_VTPM_DEGRADED': 'forbidden' });
  await nova.createFlavor('vtpm.bad', { 'hw:tpm_version': '1.2', 'hw:tpm_model': 'tpm-crb', 'trait:CUSTOM_VTPM_DEGRADED': 'forbidden' });
  await nova.createFlavor('vtpm.user', { 'hw:tpm_version': '2.0', 'hw:tpm_secret_security': 'user', 'trait:CUSTOM_VTPM_DEGRADED': 'forbidden' });
  await nova.createFlavor('vtpm.private', { 'hw:tpm_version': '2.0', 'hw:tpm_model': 'tpm-crb', 'trait:CUSTOM_VTPM_DEGRADED': 'forbidden' }, { isPublic: false });
  await glance.createImage('legacy-tpm12', { hw_tpm_version: '1.2' });
  await glance.createImage('bad-image', { hw_tpm_version: '1.2', hw_tpm_model: 'tpm-crb' }, { visibility: 'private' });

  const r = await fleet(['--json', '--prometheus', prom.url]);
  t.equal(r.code, 1, `exit 1 (findings); stderr: ${r.stderr}`);
  const report = JSON.parse(r.stdout);
  const host = (name: string) => report.hosts.find((h: { provider: string }) => h.provider === name);
  t.same(report.hosts.map((h: { provider: string }) => h.provider), ['host-a.example.org', 'host-b.example.org', 'host-c.example.org', 'host-d.example.org'], 'every root provider, not the nested one');
  t.match(host('host-a.example.org'), { agent: 'up', fenced: false, drift: [{ trait: 'COMPUTE_SECURITY_TPM_1_2', state: 'usable-not-advertised' }] });
  t.match(host('host-b.example.org'), { agent: 'up', fenced: true, verified: [], guestsAtRisk: { user_secret_mode: 1 } });
  t.same(host('host-b.example.org').drift, [{ trait: 'COMPUTE_SECURITY_TPM_2_0', state: 'advertised-not-usable' }], 'host-b advertises what it cannot run');
  t.match(host('host-c.example.org'), { agent: 'missing', verified: null, advertised: ['2.0/tpm-tis', '2.0/tpm-crb'] });
  t.match(host('host-d.example.org'), { agent: 'down', verified: null, advertised: ['1.2/tpm-tis', '2.0/tpm-tis', '2.0/tpm-crb'] });
  t.match(report.capacity, [
    { version: '1.2', model: 'tpm-tis', advertised: 1, verified: 1, fenced: 0, ready: 0, unknown: 2 },
    { version: '2.0', model: 'tpm-tis', advertised: 4, verified: 1, fenced: 1, ready: 1, unknown: 2 },
    { version: '2.0', model: 'tpm-crb', advertised: 4, verified: 1, fenced: 1, ready: 1, unknown: 2 },
  ]);
  const findings = report.findings.map((f: { kind: string; subject: string }) => `${f.kind} ${f.subject}`).sort();
  t.same(findings, [
    'agent-down host host-d.example.org',
    'agent-missing host host-c.example.org',
    'fencing-not-forbidden flavor vtpm.crb',
    'guests-at-risk host host-b.example.org',
    'host-fenced host host-b.example.org',
    'invalid-combination flavor vtpm.bad',
    'invalid-combination image bad-image',
    'no-verified-host image legacy-tpm12',
    'secret-security-user flavor vtpm.user',
    'trait-drift host host-a.example.org',
    'trait-drift host host-b.example.org',
  ]);
  t.ok(report.requests.some((q: { name: string }) => q.name === 'vtpm.private'), 'private flavors are audited too');

  const table = await fleet(['--prometheus', prom.url]);
  t.equal(table.code, 1);
  t.match(table.stdout, /invalid-combination\s+flavor vtpm\.bad\s+hw:tpm_version=1\.2 with hw:tpm_model=tpm-crb/);
  t.match(table.stdout, /Result: 11 finding\(s\)/);
});

t.test('without --prometheus: Placement, flavors and images only; no host verdicts', async (t) => {
  const r = await fleet(['--json']);
  t.equal(r.code, 1, r.stderr);
  const report = JSON.parse(r.stdout);
  t.equal(report.prometheus, null);
  t.ok(report.hosts.every((h: { agent: string; verified: unknown }) => h.agent === 'not-checked' && h.verified === null));
  const kinds = new Set(report.findings.map((f: { kind: string }) => f.kind));
  t.ok(kinds.has('invalid-combination') && kinds.has('host-fenced') && kinds.has('fencing-not-forbidden'));
  t.notOk(kinds.has('agent-missing'), 'agents are not judged without Prometheus');
});

t.test('could not run: exit 2 with a clear error', async (t) => {
  const wrongPassword = await fleet(['--prometheus', prom.url], { OS_PASSWORD: 'wrong' });
  t.equal(wrongPassword.code, 2);
  t.match(wrongPassword.stderr, /could not read placement: VTPM_ERR_AUTH: Keystone refused the credentials/);

  const port = await freePort();
  const closed = await fleet(['--prometheus', `http://127.0.0.1:${port}`]);
  t.equal(closed.code, 2);
  t.match(closed.stderr, `could not read prometheus: VTPM_ERR_PROMETHEUS_QUERY: Prometheus http://127.0.0.1:${port} is unreachable: ECONNREFUSED`);

  const notPrometheus = await fleet(['--prometheus', pl.url]);
  t.equal(notPrometheus.code, 2);
  t.match(notPrometheus.stderr, /could not read prometheus: .*(no JSON|unexpected shape)/);

  const badUrl = await fleet(['--prometheus', 'prometheus:9090']);
  t.equal(badUrl.code, 2);
  t.match(badUrl.stderr, /--prometheus must be an http\(s\) URL|is not a URL/);

  const none = await runCli(['fleet', '-c', '/dev/null'], { env: { PATH: process.env.PATH!, HOME: tmp } });
  t.equal(none.code, 2);
  t.match(none.stderr, /no OpenStack credentials/);

  const badTimeout = await fleet(['--timeout', 'soon']);
  t.equal(badTimeout.code, 64);
});
