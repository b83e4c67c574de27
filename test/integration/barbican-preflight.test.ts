import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { BarbicanPreflightExtension } from '../../src/barbican/extension.js';
import type { GuestCheck } from '../../src/barbican/preflight.js';
import { configSchema } from '../../src/config/schema.js';
import type { ExtensionContext } from '../../src/extension-api.js';
import type { GuestInventory, SecretMode, VtpmGuest } from '../../src/guests/types.js';
import { guest, inventory as inventoryOf } from '../fixtures/guests.js';
import { NovaLogExtension } from '../../src/logs/extension.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { waitFor } from '../harness/agent.js';
import { startBarbican } from '../harness/barbican.js';
import { startKeystone } from '../harness/keystone.js';
import { LineBook } from '../harness/nova-log.js';
import { promtoolCheckMetrics } from '../harness/promtool.js';
import { contextTools } from '../fixtures/state-files.js';

const G1 = '0b1e2c3d-0000-4000-8000-000000000001';
const G2 = '0b1e2c3d-0000-4000-8000-000000000002';
const G3 = '0b1e2c3d-0000-4000-8000-000000000003';

/** Guest n as Nova creates it: the secret mode from the flavor's extra spec; host mode keeps its secret in libvirt. */
function novaGuest(uuid: string, n: number, mode: SecretMode, secret: string): VtpmGuest {
  return guest(uuid, { name: `instance-0000000${n}`, encryptionSecret: secret, secretMode: mode, secretModeSource: 'extra-spec', secretPresent: mode === 'host' });
}

/** Every file under a directory, as text. */
function readTree(dir: string): string {
  let out = '';
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    out += statSync(p).isDirectory() ? readTree(p) : `\n--- ${p}\n${readFileSync(p, 'latin1')}`;
  }
  return out;
}

/**
 * Real Keystone and Barbican: secrets of a tenant project, checked as a service user of another
 * project (Nova's identity). Default policy → forbidden; Atmosphere's override, hot-reloaded →
 * ok on the next round without a restart; deleted secret → not_found; Barbican stopped →
 * unavailable, then recovery; password changed (tokens revoked) → unauthenticated. At the end,
 * everything the agent logged and exposed is searched for the payload and the token.
 */
t.test('Barbican preflight against real Keystone and Barbican', async (t) => {
  const ks = await startKeystone({
    projects: ['tenant'],
    users: [
      { name: 'alice', password: 'alice-pw', project: 'tenant', roles: ['member'] },
      { name: 'nova', password: 'nova-pw', project: 'service', roles: ['service'] },
    ],
  });
  t.teardown(() => ks.stop());
  const bb = await startBarbican(ks);
  t.teardown(() => bb.close());

  const alice = await ks.issueToken({ name: 'alice', password: 'alice-pw', project: 'tenant' });
  const payloads = [`vtpm-key-${Date.now()}-one`, `vtpm-key-${Date.now()}-two`, `vtpm-key-${Date.now()}-three`];
  const s1 = await bb.createSecret(alice, payloads[0]!, `vTPM secret for instance ${G1}`);
  const s2 = await bb.createSecret(alice, payloads[1]!, `vTPM secret for instance ${G2}`);
  const s3 = await bb.createSecret(alice, payloads[2]!, `vTPM secret for instance ${G3}`);

  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-barbican-it-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = path.join(dir, 'state');
  const logFile = path.join(dir, 'agent.log');
  const novaLog = path.join(dir, 'nova-compute.log');
  writeFileSync(novaLog, new LineBook().batch(2));
  const log = pino({ level: 'trace' }, pino.destination({ dest: logFile, sync: true }));
  const config = configSchema.parse({
    stateDir,
    logLevel: 'trace',
    barbican: { intervalSeconds: 1, ttlSeconds: 0, spread: false, checkPayload: true },
    novaLog: { source: 'file', path: novaLog, startAt: 'beginning', pollIntervalSeconds: 0.2 },
    openstack: { timeoutSeconds: 5, maxAttempts: 1 },
  });
  const state = new HostState();
  const inventory: GuestInventory = {
    ...inventoryOf([novaGuest(G1, 1, 'user', s1), novaGuest(G2, 2, 'deployment', s2), novaGuest(G3, 3, 'host', s3)]),
    collectedAt: Date.now(),
  };
  state.set({ probe: 'guest-inventory', ok: true, data: inventory, startedAt: Date.now(), durationSeconds: 0.1, lastSuccessAt: null });
  const abort = new AbortController();
  const ctx: ExtensionContext = { config, log, hostPath: hostPathResolver('/'), env: { ...process.env, ...ks.osEnv('nova') }, state, ...contextTools(), signal: abort.signal };

  const ext = new BarbicanPreflightExtension();
  const logs = new NovaLogExtension();
  const registry = new Registry();
  ext.registerMetrics(registry);
  logs.registerMetrics(registry);
  await ext.start(ctx);
  await logs.start(ctx);
  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    abort.abort();
    await ext.stop();
    await logs.stop();
  };
  t.teardown(stopAll);

  // Tokens the agent used, read from its session (the test's only look inside): the search at
  // the end must not find any of them.
  const tokens = new Set<string>();
  const noteToken = () => {
    const token = (ext as unknown as { session?: { tokenInfo?: { token: string } | null } }).session?.tokenInfo?.token;
    if (token) tokens.add(token);
  };
  const guests = () => ((ext.status().data as { guests?: GuestCheck[] }).guests ?? []);
  const resultOf = (uuid: string) => guests().find((g) => g.instanceUuid === uuid)?.result;
  const rounds = async (what: string, ok: () => boolean) => {
    await waitFor(what, () => {
      noteToken();
      return ok();
    }, 60_000, 200);
  };

  await rounds('both guests checked and forbidden', () => resultOf(G1) === 'forbidden' && resultOf(G2) === 'forbidden');
  t.equal(guests().length, 2, 'the host-mode guest needs no Barbican and is not checked');
  t.equal(ext.status().ok, false);
  t.same(ctx.restartReasons.reasonFor(G1)?.reason, 'barbican_access', 'the restart watcher gets the Barbican reason');
  let metrics = await registry.metrics();
  t.match(metrics, new RegExp(`vtpm_barbican_guest_secret_accessible\\{instance_uuid="${G1}",secret_mode="user",result="forbidden"\\} 0`));
  t.match(metrics, /vtpm_barbican_failures_total\{source="preflight",reason="forbidden"\} [1-9]/);

  // Atmosphere's policy override, dropped into policy_dirs: no restart of Barbican or the agent.
  bb.setNovaAccessPolicy(true);
  await rounds('ok after the policy override', () => resultOf(G1) === 'ok' && resultOf(G2) === 'ok');
  t.equal(ext.status().ok, true);
  t.equal(guests().every((g) => g.payloadChecked), true, 'the payload was fetched (checkPayload on)');
  t.equal(ctx.restartReasons.reasonFor(G1), undefined, 'no Barbican reason once the secret is readable');
  metrics = await registry.metrics();
  t.match(metrics, new RegExp(`vtpm_barbican_guest_secret_accessible\\{instance_uuid="${G1}",secret_mode="user",result="ok"\\} 1`));

  // `vtpm-agent check` with the defaults: one round, metadata only (no payload fetched).
  const once = await new BarbicanPreflightExtension().checkOnce({ ...ctx, config: configSchema.parse({ stateDir, openstack: { timeoutSeconds: 5 } }) });
  const onceGuests = (once.data as { guests: GuestCheck[] }).guests;
  t.same(onceGuests.map((g) => [g.instanceUuid, g.result, g.payloadChecked]).sort(), [[G1, 'ok', false], [G2, 'ok', false]], 'check: metadata only by default');
  t.equal(once.ok, true);

  await bb.deleteSecret(alice, s2);
  await rounds('not_found after deleting the secret', () => resultOf(G2) === 'not_found' && resultOf(G1) === 'ok');

  await bb.stop();
  await rounds('unavailable while Barbican is down', () => resultOf(G1) === 'unavailable');
  await bb.start();
  await rounds('recovered', () => resultOf(G1) === 'ok');

  // Nova's password is rotated, which revokes its tokens: the agent's credentials no longer work.
  await ks.setPassword('nova', 'nova-pw-rotated');
  // (the password change already revoked them in Keystone; Barbican validates every request)
  await rounds('unauthenticated after the password change', () => resultOf(G1) === 'unauthenticated');
  metrics = await registry.metrics();
  for (const r of ['forbidden', 'not_found', 'unavailable', 'unauthenticated']) {
    t.match(metrics, new RegExp(`vtpm_barbican_failures_total\\{source="preflight",reason="${r}"\\} [1-9]`), `${r} counted`);
  }
  t.match(metrics, /vtpm_barbican_failures_total\{source="log",reason="forbidden"\} 2/, 'the log follower feeds the same counter');

  const lint = promtoolCheckMetrics(metrics);
  t.equal(lint.code, 0, `promtool check metrics: ${lint.output}`);

  // Everything the agent wrote or exposed: its log, /metrics, /status, its state files.
  const status = JSON.stringify([ext.status(), logs.status()]);
  metrics = await registry.metrics();
  await stopAll();
  const written = `${readFileSync(logFile, 'latin1')}\n${metrics}\n${status}\n${readTree(stateDir)}`;
  // The capture is real: it holds what the agent did.
  t.match(written, /vTPM secret not accessible/, 'the log capture has the preflight warnings');
  t.match(written, /vtpm_barbican_preflight_checks_total\{result="ok"\}/, 'the metrics capture');
  t.match(written, new RegExp(s1), 'secret UUIDs (not secret) are reported');
  t.match(written, /nova-log\.json/, 'the state files are in the capture');
  t.ok(tokens.size >= 1, `the agent authenticated (${tokens.size} token(s))`);
  for (const p of payloads) {
    t.notOk(written.includes(p), 'no payload anywhere');
    t.notOk(written.includes(Buffer.from(p).toString('base64')), 'no base64 payload anywhere');
  }
  for (const token of tokens) {
    t.notOk(written.includes(token), 'no token anywhere');
    t.notOk(written.includes(token.slice(0, 40)), 'not even part of a token');
  }
  t.notOk(written.includes('nova-pw'), 'no password anywhere');
});
