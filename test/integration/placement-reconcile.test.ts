/**
 * The reconciler against real Keystone and real Placement (Debian packages): provider discovery,
 * drift both ways, unknown traits, enforce mode fencing and unfencing, traits of others kept,
 * steady state, the one-shot command and the extension with its metrics.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { openSession } from '../../src/openstack/index.js';
import { PlacementReconcilerExtension, runReconcileOnce } from '../../src/placement/extension.js';
import { PlacementReconciler } from '../../src/placement/reconciler.js';
import { renderSection } from '../../src/placement/report.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import type { Verdict } from '../../src/verdict.js';
import { runCli } from '../harness/agent.js';
import { requireCommands } from '../harness/components.js';
import { startKeystone } from '../harness/keystone.js';
import { hostVerdict, startPlacement } from '../harness/placement.js';
import { contextTools } from '../fixtures/state-files.js';

const log = pino({ level: 'silent' });
const AGENT = { name: 'vtpm-agent', password: 'agent-pw', project: 'service', roles: ['admin'] };

const ks = await startKeystone({ users: [AGENT] });
t.teardown(() => ks.stop());
const pl = await startPlacement(ks);
t.teardown(() => pl.stop());
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-placement-it-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const NOVA_TRAITS = ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_STATUS_DISABLED', 'HW_CPU_X86_AVX', 'CUSTOM_NOVA_OWNED'];

function config(placement: ConfigInput['placement'] = {}, openstack: ConfigInput['openstack'] = {}) {
  return configSchema.parse({
    openstack: { retryBaseDelaySeconds: 0.05, ...openstack },
    placement: { computeIdPath: null, ...placement },
  });
}

function reconciler(cfg = config(), env = ks.osEnv(AGENT)) {
  const opened = openSession(cfg.openstack, { env, log });
  if (opened.state !== 'ready') throw new Error(`session: ${opened.state}`);
  t.teardown(() => opened.session.close());
  return new PlacementReconciler({
    session: opened.session,
    config: cfg.placement,
    hostPath: hostPathResolver('/'),
    libvirtHostname: async () => null,
    log,
  });
}

t.test('provider discovery: by configured name, by compute_id file, by libvirt hostname; not found is a state', async (t) => {
  const byName = await pl.createProvider('discovery-by-name.example.org');
  const byId = await pl.createProvider('discovery-by-id.example.org');
  const r1 = await reconciler(config({ providerName: byName.name })).reconcile(hostVerdict());
  t.same(r1.provider, { uuid: byName.uuid, name: byName.name, via: 'name' });

  const idFile = path.join(tmp, 'compute_id');
  writeFileSync(idFile, `${byId.uuid}\n`);
  const r2 = await reconciler(config({ computeIdPath: idFile, providerName: byName.name })).reconcile(hostVerdict());
  t.same(r2.provider, { uuid: byId.uuid, name: byId.name, via: 'compute_id' }, 'compute_id wins over the name');

  writeFileSync(idFile, 'not-a-uuid\n');
  const r3 = await reconciler(config({ computeIdPath: idFile, providerName: byName.name })).reconcile(hostVerdict());
  t.equal(r3.provider?.via, 'name', 'an unusable compute_id falls back to the name');
  t.match(r3.providerNotes.join(' '), /does not hold a UUID/);

  // libvirt's hostname, as Nova registers it (real `virsh hostname`).
  requireCommands('virsh');
  const libvirtName = execFileSync('virsh', ['-r', '-q', '-c', 'qemu:///system', 'hostname'], { encoding: 'utf8' }).trim();
  const byLibvirt = await pl.createProvider(libvirtName);
  const ext = new PlacementReconcilerExtension({ verdict: () => hostVerdict() });
  const once = await ext.checkOnce!({
    config: config(),
    log,
    hostPath: hostPathResolver('/'),
    env: ks.osEnv(AGENT),
    state: new HostState(),
    ...contextTools(),
    signal: new AbortController().signal,
  });
  t.equal((once.data as { provider: { uuid: string } }).provider.uuid, byLibvirt.uuid, `found by libvirt's hostname ${libvirtName}`);

  const missing = await reconciler(config({ providerName: 'no-such-host.example.org' })).reconcile(hostVerdict());
  t.equal(missing.state, 'provider-not-found');
  t.equal(missing.ok, false);
  t.equal(missing.error?.code, 'VTPM_ERR_PLACEMENT_PROVIDER_NOT_FOUND');
  t.match(missing.summary, /no-such-host\.example\.org/);
});

t.test('observe: drift both ways, TIS/CRB unknown to this Placement, nothing written', async (t) => {
  const rp = await pl.createProvider('observe.example.org');
  await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_2_0', 'HW_CPU_X86_AVX']);
  const before = await pl.getTraits(rp.uuid);
  const rec = reconciler(config({ providerName: rp.name }));

  const broken = await rec.reconcile(hostVerdict({ failing: ['2.0'] }));
  const state = Object.fromEntries(broken.assessment!.map((a) => [a.trait, a.state]));
  t.same(state, {
    COMPUTE_SECURITY_TPM_1_2: 'usable-not-advertised',
    COMPUTE_SECURITY_TPM_2_0: 'advertised-not-usable',
    COMPUTE_SECURITY_TPM_TIS: 'unknown-to-placement',
    COMPUTE_SECURITY_TPM_CRB: 'unknown-to-placement',
  });
  t.equal(broken.state, 'drift');
  t.equal(broken.ok, false);
  t.equal(broken.fence, true);
  t.same(broken.plan, { add: ['CUSTOM_VTPM_DEGRADED'], remove: [] }, 'what enforce mode would do');
  t.equal(broken.wrote, false);
  t.match(broken.summary, /COMPUTE_SECURITY_TPM_2_0 advertised but not usable \(EMULATION_FAILED\)/);
  t.match(broken.summary, /would write in enforce mode \+CUSTOM_VTPM_DEGRADED/);
  t.same(await pl.getTraits(rp.uuid), before, 'observe mode wrote nothing');
  const list = await pl.api<{ traits: string[] }>('GET', '/traits?name=startswith:CUSTOM_VTPM');
  t.same(list.body.traits, [], 'no custom trait created either');

  await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'HW_CPU_X86_AVX']);
  const healthy = await rec.reconcile(hostVerdict());
  t.equal(healthy.state, 'consistent');
  t.equal(healthy.ok, true);
  t.equal(healthy.fence, false);
});

t.test('enforce: fences a host whose emulation check fails, unfences when it passes; others\' traits survive', async (t) => {
  const rp = await pl.createProvider('enforce.example.org');
  await pl.setTraits(rp.uuid, NOVA_TRAITS);
  const rec = reconciler(config({ providerName: rp.name, mode: 'enforce' }));

  const fenced = await rec.reconcile(hostVerdict({ failing: ['2.0'] }));
  t.equal(fenced.wrote, true);
  t.same(fenced.createdTraits, ['CUSTOM_VTPM_DEGRADED'], 'custom trait created first');
  t.same(fenced.plan, { add: ['CUSTOM_VTPM_DEGRADED'], remove: [] });
  t.same((await pl.getTraits(rp.uuid)).traits, [...NOVA_TRAITS, 'CUSTOM_VTPM_DEGRADED'].sort(), 'fenced, every other trait kept');
  t.match(fenced.summary, /wrote \+CUSTOM_VTPM_DEGRADED/);

  const steady = await rec.reconcile(hostVerdict({ failing: ['2.0'] }));
  t.equal(steady.wrote, false, 'no write when nothing changes');
  t.equal(steady.requests, 1, 'steady state: one GET');
  t.equal(steady.tokenRequests, 0, 'no token request');

  const unfenced = await rec.reconcile(hostVerdict());
  t.equal(unfenced.wrote, true);
  t.same(unfenced.plan, { add: [], remove: ['CUSTOM_VTPM_DEGRADED'] });
  t.same((await pl.getTraits(rp.uuid)).traits, [...NOVA_TRAITS].sort(), 'unfenced, every other trait kept');
  t.equal(unfenced.state, 'consistent');

  const dry = await rec.reconcile(hostVerdict({ failing: ['2.0'] }), { dryRun: true });
  t.equal(dry.wrote, false);
  t.same(dry.plan, { add: ['CUSTOM_VTPM_DEGRADED'], remove: [] });
  t.match(dry.summary, /would write \(dry run\)/);
  t.same((await pl.getTraits(rp.uuid)).traits, [...NOVA_TRAITS].sort(), 'dry run wrote nothing');
});

t.test('enforce with verified-capability traits; an owned trait set by hand is removed, never a foreign one', async (t) => {
  const rp = await pl.createProvider('verified.example.org');
  await pl.setTraits(rp.uuid, [...NOVA_TRAITS, 'CUSTOM_VTPM_STALE_THING', 'CUSTOM_VTPMX_NOT_OURS']);
  const rec = reconciler(config({ providerName: rp.name, mode: 'enforce', verifiedTraits: true }));
  const r = await rec.reconcile(hostVerdict({ failing: ['1.2'] }));
  t.same(r.plan, { add: ['CUSTOM_VTPM_DEGRADED', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_TIS'], remove: ['CUSTOM_VTPM_STALE_THING'] });
  t.same(
    (await pl.getTraits(rp.uuid)).traits,
    [...NOVA_TRAITS, 'CUSTOM_VTPMX_NOT_OURS', 'CUSTOM_VTPM_DEGRADED', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_TIS'].sort(),
  );
  const required = await pl.api<{ resource_providers: Array<{ uuid: string }> }>('GET', '/resource_providers?required=CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB');
  t.same(required.body.resource_providers.map((p) => p.uuid), [rp.uuid], 'a flavor requiring the verified trait lands here');
});

t.test('reconcile --once: OS_* environment, clouds.yaml (OS_CLOUD), application credential; exit codes and text', async (t) => {
  const rp = await pl.createProvider('once.example.org');
  await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
  const cfg = config({ providerName: rp.name, mode: 'enforce' });

  const viaEnv = await runReconcileOnce({ config: cfg, log, verdict: hostVerdict({ failing: ['2.0'] }), dryRun: true, env: ks.osEnv(AGENT) });
  t.equal(viaEnv.exitCode, 1, 'drift');
  t.equal(viaEnv.result?.wrote, false);
  const text = renderSection(viaEnv.section);
  t.match(text, /^\[FAIL\] placement: provider once\.example\.org: COMPUTE_SECURITY_TPM_2_0 advertised but not usable/);
  t.match(text, /COMPUTE_SECURITY_TPM_TIS\s+n\/a\s+yes\s+yes\s+unknown-to-placement/);

  const cloudsFile = path.join(tmp, 'clouds.yaml');
  writeFileSync(cloudsFile, ks.cloudsYaml(AGENT, 'mycloud'), { mode: 0o600 });
  const viaClouds = await runReconcileOnce({
    config: cfg,
    log,
    verdict: hostVerdict({ failing: ['2.0'] }),
    dryRun: false,
    env: { OS_CLOUD: 'mycloud', OS_CLIENT_CONFIG_FILE: cloudsFile },
  });
  t.equal(viaClouds.result?.wrote, true, 'enforce without --dry-run writes');
  t.match((viaClouds.section.data as { cloud: { source: string } }).cloud.source, /clouds\.yaml .*\(cloud mycloud\)/);
  t.ok((await pl.getTraits(rp.uuid)).traits.includes('CUSTOM_VTPM_DEGRADED'));

  const ac = await ks.createApplicationCredential(AGENT, 'vtpm-agent-ac');
  const viaAppCred = await runReconcileOnce({
    config: config({ providerName: rp.name, mode: 'enforce' }, { auth: { authUrl: ks.url, applicationCredentialId: ac.id, applicationCredentialSecret: ac.secret } }),
    log,
    verdict: hostVerdict(),
    dryRun: false,
    env: {},
  });
  t.equal(viaAppCred.exitCode, 0, JSON.stringify(viaAppCred.result?.error));
  t.equal(viaAppCred.result?.wrote, true, 'unfenced with an application credential');

  const none = await runReconcileOnce({ config: cfg, log, verdict: hostVerdict(), dryRun: true, env: {} });
  t.equal(none.exitCode, 3);
  t.equal(none.section.ok, null);
  t.match(none.section.summary, /no OpenStack credentials configured/);

  const bad = await runReconcileOnce({ config: cfg, log, verdict: hostVerdict(), dryRun: true, env: { OS_AUTH_URL: ks.url, OS_USERNAME: 'x' } });
  t.equal(bad.exitCode, 2);
  t.equal(bad.section.ok, false);
  t.match(bad.section.summary, /needs a user domain/);
});

t.test('extension: reconciles on start and when the verdict changes; /metrics and status show drift and fencing', async (t) => {
  const rp = await pl.createProvider('extension.example.org');
  await pl.setTraits(rp.uuid, NOVA_TRAITS);
  let verdict: Verdict | null = null;
  const ext = new PlacementReconcilerExtension({ verdict: () => verdict });
  const results: string[] = [];
  ext.onResult = (r) => results.push(`${r.state}${r.wrote ? '+wrote' : ''}`);
  const registry = new Registry();
  ext.registerMetrics(registry);
  const state = new HostState();
  const controller = new AbortController();
  await ext.start({
    config: config({ providerName: rp.name, mode: 'enforce', schedule: '0 0 1 1 *' }),
    log,
    hostPath: hostPathResolver('/'),
    env: ks.osEnv(AGENT),
    state,
    ...contextTools(),
    signal: controller.signal,
  });
  t.teardown(() => ext.stop());
  await ext.idle();
  t.equal(ext.status().ok, null, 'no verdict yet');
  t.match(ext.status().summary, /local capability checks have not run yet/);

  verdict = hostVerdict({ failing: ['2.0'] });
  state.completeCycle();
  await ext.idle();
  t.ok((await pl.getTraits(rp.uuid)).traits.includes('CUSTOM_VTPM_DEGRADED'), 'fenced after the verdict changed');
  let metrics = await registry.metrics();
  t.match(metrics, /vtpm_placement_trait_drift\{trait="COMPUTE_SECURITY_TPM_2_0"\} 1/);
  t.match(metrics, /vtpm_placement_trait_state\{trait="COMPUTE_SECURITY_TPM_CRB",state="unknown_to_placement"\} 1/);
  t.match(metrics, /vtpm_placement_owned_trait_present\{trait="CUSTOM_VTPM_DEGRADED"\} 1/);
  t.match(metrics, /vtpm_placement_fence_required 1/);
  t.match(metrics, /vtpm_placement_trait_writes_total 1/);
  t.match(metrics, /vtpm_placement_reconcile_state\{state="drift"\} 1/);
  t.match(metrics, new RegExp(`vtpm_placement_provider_info\\{provider_uuid="${rp.uuid}",provider_name="extension.example.org",found_via="name",mode="enforce"\\} 1`));
  const status = ext.status();
  t.equal(status.ok, false);
  t.ok(status.table?.some((row) => row[0] === 'COMPUTE_SECURITY_TPM_2_0' && row[4] === 'advertised-not-usable'));

  verdict = hostVerdict();
  state.completeCycle();
  await ext.idle();
  t.notOk((await pl.getTraits(rp.uuid)).traits.includes('CUSTOM_VTPM_DEGRADED'), 'unfenced when the check passes again');
  metrics = await registry.metrics();
  t.match(metrics, /vtpm_placement_trait_drift\{trait="COMPUTE_SECURITY_TPM_2_0"\} 0/);
  t.match(metrics, /vtpm_placement_owned_trait_present\{trait="CUSTOM_VTPM_DEGRADED"\} 0/);
  t.match(metrics, /vtpm_placement_reconcile_state\{state="consistent"\} 1/);
  t.equal(ext.status().ok, true);

  state.completeCycle();
  await ext.idle();
  t.same(results, ['waiting-for-verdict', 'drift+wrote', 'consistent+wrote'], 'an unchanged verdict does not trigger a pass');

  requireCommands('promtool');
  const lint = execFileSync('sh', ['-c', 'promtool check metrics 2>&1; echo rc=$?'], { input: metrics, encoding: 'utf8' });
  t.equal(lint.trim(), 'rc=0', `promtool check metrics is clean: ${lint}`);
});

t.test('not configured: the extension idles and says so', async (t) => {
  const ext = new PlacementReconcilerExtension({ verdict: () => hostVerdict() });
  const registry = new Registry();
  ext.registerMetrics(registry);
  await ext.start({ config: config(), log, hostPath: hostPathResolver('/'), env: {}, state: new HostState(), ...contextTools(), signal: new AbortController().signal });
  t.equal(ext.status().ok, null);
  t.equal((ext.status().data as { state: string }).state, 'not-configured');
  t.match(await registry.metrics(), /vtpm_placement_reconcile_state\{state="not_configured"\} 1/);
  t.same(ext.readiness(), { ready: true, detail: 'placement: not-configured' });
  await ext.stop();
});

t.test('vtpm-agent check shows the Placement view when OS_* credentials are set', async (t) => {
  requireCommands('virsh', 'swtpm');
  // The provider named like libvirt's hostname (made in the discovery test) advertises 1.2 only.
  const libvirtName = execFileSync('virsh', ['-r', '-q', '-c', 'qemu:///system', 'hostname'], { encoding: 'utf8' }).trim();
  const [provider] = (await pl.api<{ resource_providers: Array<{ uuid: string }> }>('GET', `/resource_providers?name=${libvirtName}`)).body.resource_providers;
  await pl.setTraits(provider!.uuid, ['COMPUTE_SECURITY_TPM_1_2']);
  const result = await runCli(['check', '--json'], { env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null', ...ks.osEnv(AGENT) }, timeoutMs: 240_000 });
  const report = JSON.parse(result.stdout) as { sections: Array<{ name: string; ok: boolean | null; summary: string; data: { state: string; provider: { uuid: string } } }> };
  const section = report.sections.find((s) => s.name === 'placement');
  t.ok(section, `a placement section (stderr: ${result.stderr.slice(0, 300)})`);
  t.equal(section!.data.provider.uuid, provider!.uuid);
  t.equal(section!.data.state, 'drift');
  t.equal(section!.ok, false);
  t.match(section!.summary, /COMPUTE_SECURITY_TPM_2_0 usable but not advertised/);
  t.same((await pl.getTraits(provider!.uuid)).traits, ['COMPUTE_SECURITY_TPM_1_2'], 'check never writes');
});

t.test('vtpm-agent reconcile --once: dry run writes nothing; enforce fences a host whose swtpm fails and unfences it', async (t) => {
  requireCommands('virsh', 'swtpm');
  const libvirtName = execFileSync('virsh', ['-r', '-q', '-c', 'qemu:///system', 'hostname'], { encoding: 'utf8' }).trim();
  const [provider] = (await pl.api<{ resource_providers: Array<{ uuid: string }> }>('GET', `/resource_providers?name=${libvirtName}`)).body.resource_providers;
  await pl.setTraits(provider!.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_NOVA_OWNED']);
  // A swtpm that exits 1 ahead of the real one on PATH: the emulation check fails, nothing else does.
  const brokenBin = path.join(tmp, 'broken-swtpm-bin');
  execFileSync('mkdir', ['-p', brokenBin]);
  writeFileSync(path.join(brokenBin, 'swtpm'), '#!/bin/sh\necho "swtpm: simulated breakage" >&2\nexit 1\n', { mode: 0o755 });
  const env = { ...process.env, VTPM_AGENT_CONFIG: '/dev/null', ...ks.osEnv(AGENT) };
  const broken = { ...env, PATH: `${brokenBin}:${process.env.PATH}` };

  const dry = await runCli(['reconcile', '--once', '--dry-run', '--json', '--set', 'placement.mode=enforce'], { env: broken, timeoutMs: 240_000 });
  t.equal(dry.code, 1, `drift (stderr: ${dry.stderr.slice(0, 300)})`);
  t.match(JSON.parse(dry.stdout), { name: 'placement', ok: false });
  t.same((await pl.getTraits(provider!.uuid)).traits.sort(), ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_NOVA_OWNED'], 'a dry run writes nothing');

  const fence = await runCli(['reconcile', '--once', '--set', 'placement.mode=enforce'], { env: broken, timeoutMs: 240_000 });
  t.match(fence.stdout, /placement/);
  t.same((await pl.getTraits(provider!.uuid)).traits.sort(), ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_NOVA_OWNED', 'CUSTOM_VTPM_DEGRADED'], 'fenced; the traits of others kept');

  const unfence = await runCli(['reconcile', '--once', '--set', 'placement.mode=enforce'], { env, timeoutMs: 240_000 });
  t.equal(unfence.code, 0, `consistent again (stdout: ${unfence.stdout.slice(0, 300)})`);
  t.same((await pl.getTraits(provider!.uuid)).traits.sort(), ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'CUSTOM_NOVA_OWNED'], 'unfenced');

  const usage = await runCli(['reconcile'], { env });
  t.equal(usage.code, 64, 'reconcile without --once is a usage error');
});
