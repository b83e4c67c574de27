/**
 * Failures against real Keystone and Placement: a revoked token (401 → one re-auth), token
 * expiry, a wrong password, a user without the role Placement needs (403), and Placement going
 * away and coming back — the reconciler reports each clearly, backs off, and recovers by itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { openSession } from '../../src/openstack/index.js';
import type { OpenStackSession } from '../../src/openstack/session.js';
import { PlacementReconcilerExtension } from '../../src/placement/extension.js';
import { PlacementReconciler, type ReconcileResult } from '../../src/placement/reconciler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { startAgent, waitFor } from '../harness/agent.js';
import { startKeystone } from '../harness/keystone.js';
import { hostProbe } from '../../src/probes/host.js';
import type { Probe } from '../../src/probes/types.js';
import { hostVerdict, startPlacement } from '../harness/placement.js';
import { contextTools } from '../fixtures/state-files.js';

const log = pino({ level: 'silent' });
const AGENT = { name: 'vtpm-agent', password: 'agent-pw', project: 'service', roles: ['admin'] };
const NOBODY = { name: 'tenant-user', password: 'tenant-pw', project: 'tenant', roles: ['member'] };
const LATE = { name: 'late-agent', password: 'late-pw', project: 'service', roles: [] as string[] };

const ks = await startKeystone({ projects: ['tenant'], users: [AGENT, NOBODY, LATE] });
t.teardown(() => ks.stop());
// Every request validated by Keystone: a revoked token is refused at once.
const pl = await startPlacement(ks, { tokenCacheSeconds: -1 });
t.teardown(() => pl.stop());
const rp = await pl.createProvider('faults.example.org');
await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);

function config(placement: ConfigInput['placement'] = {}) {
  return configSchema.parse({
    openstack: { retryBaseDelaySeconds: 0.05, retryMaxDelaySeconds: 0.2, maxAttempts: 2, timeoutSeconds: 20 },
    placement: { computeIdPath: null, providerName: rp.name, retryInitialSeconds: 0.2, retryMaxSeconds: 1, schedule: '0 0 1 1 *', ...placement },
  });
}

function open(env: Record<string, string>, now?: () => number): OpenStackSession {
  const opened = openSession(config().openstack, { env, log, ...(now ? { now } : {}) });
  if (opened.state !== 'ready') throw new Error(opened.state);
  t.teardown(() => opened.session.close());
  return opened.session;
}

const reconcilerFor = (session: OpenStackSession) =>
  new PlacementReconciler({ session, config: config().placement, hostPath: hostPathResolver('/'), libvirtHostname: async () => null, log });

/** The session's current token, read the way only a test may (it is never exposed or logged). */
const currentToken = (s: OpenStackSession) => (s as unknown as { tokenInfo: { token: string } }).tokenInfo.token;

/** Resolves with the first result matching `pred` (the overall tap timeout bounds the wait). */
function nextResult(ext: PlacementReconcilerExtension, pred: (r: ReconcileResult) => boolean, seen: ReconcileResult[] = []): Promise<ReconcileResult> {
  return new Promise((resolve) => {
    const previous = ext.onResult;
    ext.onResult = (r) => {
      seen.push(r);
      if (pred(r)) {
        ext.onResult = previous;
        resolve(r);
      }
    };
  });
}

function startExtension(env: Record<string, string>) {
  const ext = new PlacementReconcilerExtension({ verdict: () => hostVerdict(), random: () => 0.999 });
  const registry = new Registry();
  ext.registerMetrics(registry);
  const state = new HostState();
  return { ext, registry, state, ctx: { config: config(), log, hostPath: hostPathResolver('/'), env, state, ...contextTools(), signal: new AbortController().signal } };
}

t.test('revoked token: Placement answers 401, the session re-authenticates once and succeeds', async (t) => {
  const session = open(ks.osEnv(AGENT));
  const rec = reconcilerFor(session);
  const first = await rec.reconcile(hostVerdict());
  t.equal(first.state, 'consistent', JSON.stringify(first.error));
  t.equal(session.stats.tokenRequests, 1);
  await ks.revokeToken(currentToken(session));
  const second = await rec.reconcile(hostVerdict());
  t.equal(second.state, 'consistent', JSON.stringify(second.error));
  t.equal(second.tokenRequests, 1, 'one new token');
  t.equal(session.stats.reauthentications, 1);
  t.equal(rec.counters.apiErrors.get('placement 401'), 1, 'the 401 really came from Placement');
});

t.test('token about to expire: renewed before use (clock moved, no waiting)', async (t) => {
  let offset = 0;
  const session = open(ks.osEnv(AGENT), () => Date.now() + offset);
  const rec = reconcilerFor(session);
  await rec.reconcile(hostVerdict());
  const expiresAt = session.tokenFacts!.expiresAt;
  offset = expiresAt - Date.now() - 60_000; // one minute left, inside the 120 s margin
  const r = await rec.reconcile(hostVerdict());
  t.equal(r.state, 'consistent');
  t.equal(r.tokenRequests, 1, 're-authenticated');
  t.equal(session.stats.reauthentications, 0, 'without a 401');
});

t.test('wrong password: clear status, backoff, the agent keeps running, recovers when the password is fixed', async (t) => {
  const { ext, registry, ctx } = startExtension({ ...ks.osEnv(LATE), OS_PASSWORD: 'typo' });
  const seen: ReconcileResult[] = [];
  const failing = nextResult(ext, (r) => seen.length >= 2 && r.state === 'auth-failed', seen);
  await ext.start(ctx); // must not throw
  t.teardown(() => ext.stop());
  await failing;
  t.ok(seen.every((r) => r.state === 'auth-failed'));
  const status = ext.status();
  t.equal(status.ok, false);
  t.match(status.summary, /^Keystone refused the credentials: Keystone refused the credentials from OS_\* environment \(HTTP 401/);
  t.match(status.summary, /retry at/);
  t.notMatch(JSON.stringify(status), /typo/, 'the password never shows');
  t.equal((status.data as { consecutiveFailures: number }).consecutiveFailures >= 2, true);
  t.same(ext.readiness(), { ready: true, detail: 'placement: auth-failed' }, 'the extension does not hold readiness back');
  const metrics = await registry.metrics();
  t.match(metrics, /vtpm_placement_reconcile_state\{state="auth_failed"\} 1/);
  t.match(metrics, /vtpm_placement_auth_failures_total [2-9]/);
  t.match(metrics, /vtpm_placement_api_errors_total\{service="identity",status="401"\} [2-9]/);

  // The operator fixes it on the Keystone side: the next retry succeeds without a restart.
  await ks.grant(LATE.name, 'service', 'admin');
  const recovered = nextResult(ext, (r) => r.state === 'consistent');
  await ks.setPassword(LATE.name, 'typo');
  t.equal((await recovered).state, 'consistent');
  t.equal(ext.status().ok, true);
});

t.test('user without the admin role: 403 forbidden, clear status; granting the role recovers', async (t) => {
  const { ext, registry, ctx } = startExtension(ks.osEnv(NOBODY));
  const forbidden = nextResult(ext, (r) => r.state === 'forbidden');
  await ext.start(ctx);
  t.teardown(() => ext.stop());
  const r = await forbidden;
  t.equal(r.error?.status, 403);
  t.equal(r.error?.code, 'VTPM_ERR_FORBIDDEN');
  t.match(ext.status().summary, /lack the role Placement's trait calls require: admin under Placement's default policy.*Policy does not allow placement:/);
  t.match(await registry.metrics(), /vtpm_placement_api_errors_total\{service="placement",status="403"\} [1-9]/);
  const recovered = nextResult(ext, (x) => x.state === 'consistent');
  await ks.grant(NOBODY.name, 'tenant', 'admin');
  t.equal((await recovered).state, 'consistent', 'a fresh token carries the new role');
});

t.test('Placement stopped and restarted: unreachable, backs off, recovers by itself', async (t) => {
  const { ext, registry, ctx } = startExtension(ks.osEnv(AGENT));
  const ready = nextResult(ext, (r) => r.state === 'consistent');
  await ext.start(ctx);
  t.teardown(() => ext.stop());
  await ready;
  await pl.stopServer();
  const seen: ReconcileResult[] = [];
  const down = nextResult(ext, (r) => seen.filter((x) => x.state === 'unreachable').length >= 3, seen);
  ext.trigger();
  await down;
  t.ok(seen.every((x) => x.state === 'unreachable'), seen.map((x) => x.state).join(','));
  t.equal(seen[0]!.error?.code, 'VTPM_ERR_HTTP_UNREACHABLE');
  t.match(ext.status().summary, /^Placement or Keystone is unreachable: placement: cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\).*retry at/);
  let metrics = await registry.metrics();
  t.match(metrics, /vtpm_placement_reconcile_success 0/);
  t.match(metrics, /vtpm_placement_trait_drift\{trait="COMPUTE_SECURITY_TPM_2_0"\} 0/, 'last known trait view kept during the outage');
  t.match(metrics, /vtpm_placement_api_errors_total\{service="placement",status="unreachable"\} [3-9]/);

  const back = nextResult(ext, (r) => r.state === 'consistent');
  await pl.startServer();
  const r = await back;
  t.equal(r.error, null);
  t.equal((ext.status().data as { consecutiveFailures: number }).consecutiveFailures, 0);
  metrics = await registry.metrics();
  t.match(metrics, /vtpm_placement_reconcile_success 1/);
  t.match(metrics, /vtpm_placement_reconciles_total\{result="failure"\} [3-9]/);
});

t.test('a whole agent whose Placement login is refused: /readyz stays 200 and its probes keep running and reporting', async (t) => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-placement-agent-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const ext = new PlacementReconcilerExtension({ verdict: () => hostVerdict(), random: () => 0.999 });
  const failures: ReconcileResult[] = [];
  const failing = nextResult(ext, (r) => failures.length >= 2 && r.state === 'auth-failed', failures);
  const running = await startAgent(
    [`stateDir=${stateDir}`, 'probes.schedule=*/2 * * * * *', `placement.providerName=${rp.name}`, 'placement.computeIdPath=null', 'placement.retryInitialSeconds=0.2', 'placement.retryMaxSeconds=1', 'openstack.maxAttempts=2'],
    { probes: [hostProbe as Probe], extensions: [ext], env: { ...process.env, ...ks.osEnv(LATE), OS_PASSWORD: 'wrong' } },
  );
  t.teardown(running.stop);
  await failing;
  const ready = await fetch(`${running.url}/readyz`);
  t.equal(ready.status, 200, 'ready although Placement refuses the login');
  const lastSuccess = async () => {
    const text = await (await fetch(`${running.url}/metrics`)).text();
    return Number(/^vtpm_probe_last_success_timestamp_seconds\{probe="host"\} (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
  };
  const first = await lastSuccess();
  t.ok(Number.isFinite(first), 'the host probe reports');
  // The probe runs every 2 s: a later success shows the schedule keeps turning beside the failing reconciler.
  await waitFor('a later host probe success', async () => (await lastSuccess()) > first, 20_000, 250);
  const text = await (await fetch(`${running.url}/metrics`)).text();
  t.match(text, /^vtpm_probe_success\{probe="host"\} 1$/m);
  t.match(text, /^vtpm_placement_reconcile_state\{state="auth_failed"\} 1$/m);
  t.equal((await fetch(`${running.url}/healthz`)).status, 200);
});
