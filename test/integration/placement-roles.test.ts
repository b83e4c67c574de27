/**
 * Against real Keystone and real Placement: which role the agent's identity needs for the trait
 * calls (a service-only identity and an admin one), and the drift warning logged on a change of
 * state, not on every pass.
 */
import pino from 'pino';
import t from 'tap';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { openSession } from '../../src/openstack/index.js';
import { PlacementReconcilerExtension } from '../../src/placement/extension.js';
import { PlacementReconciler } from '../../src/placement/reconciler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import type { Verdict } from '../../src/verdict.js';
import { startKeystone } from '../harness/keystone.js';
import { hostVerdict, startPlacement } from '../harness/placement.js';
import { contextTools } from '../fixtures/state-files.js';

const log = pino({ level: 'silent' });
const SERVICE_ONLY = { name: 'vtpm-agent-svc', password: 'svc-pw', project: 'service', roles: ['service'] };
const ADMIN = { name: 'vtpm-agent-admin', password: 'admin-pw', project: 'service', roles: ['admin'] };

const ks = await startKeystone({ users: [SERVICE_ONLY, ADMIN] });
t.teardown(() => ks.stop());
const pl = await startPlacement(ks);
t.teardown(() => pl.stop());

function config(placement: ConfigInput['placement'] = {}) {
  return configSchema.parse({ openstack: { retryBaseDelaySeconds: 0.05, maxAttempts: 1 }, placement: { computeIdPath: null, ...placement } });
}

function reconciler(cfg: ReturnType<typeof config>, user: typeof ADMIN) {
  const opened = openSession(cfg.openstack, { env: ks.osEnv(user), log });
  if (opened.state !== 'ready') throw new Error(`session: ${opened.state}`);
  t.teardown(() => opened.session.close());
  return new PlacementReconciler({ session: opened.session, config: cfg.placement, hostPath: hostPathResolver('/'), libvirtHostname: async () => null, log });
}

t.test('a service-only identity and an admin identity against this Placement', async (t) => {
  const rp = await pl.createProvider('roles.example.org');
  await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_2_0']);
  const failing = hostVerdict({ failing: ['2.0'] });
  // Placement's default policy (8.0, Debian 12): the trait rules are admin (or system reader) only.
  const svcObserve = await reconciler(config({ providerName: rp.name }), SERVICE_ONLY).reconcile(failing);
  t.equal(svcObserve.state, 'forbidden', 'a service-only token cannot even list traits');
  t.equal(svcObserve.error?.code, 'VTPM_ERR_FORBIDDEN');
  t.match(svcObserve.summary, /admin under Placement's default policy/, 'the summary names the role that is needed');
  const svcEnforce = await reconciler(config({ providerName: rp.name, mode: 'enforce' }), SERVICE_ONLY).reconcile(failing);
  t.same([svcEnforce.state, svcEnforce.wrote], ['forbidden', false]);
  t.same((await pl.getTraits(rp.uuid)).traits, ['COMPUTE_SECURITY_TPM_2_0'], 'nothing written');

  const adminObserve = await reconciler(config({ providerName: rp.name }), ADMIN).reconcile(failing);
  t.same([adminObserve.state, adminObserve.error], ['drift', null], 'admin reads');
  const adminEnforce = await reconciler(config({ providerName: rp.name, mode: 'enforce' }), ADMIN).reconcile(failing);
  t.same([adminEnforce.state, adminEnforce.wrote], ['drift', true], 'admin writes (fences)');
  t.ok((await pl.getTraits(rp.uuid)).traits.includes('CUSTOM_VTPM_DEGRADED'));
});

t.test('drift is logged when it begins, changes and ends; not at every pass while the host stays fenced', async (t) => {
  const rp = await pl.createProvider('drift-log.example.org');
  await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
  const lines: Array<{ level: number; msg: string }> = [];
  const captured = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  let verdict: Verdict = hostVerdict({ failing: ['2.0'] });
  const ext = new PlacementReconcilerExtension({ verdict: () => verdict });
  const state = new HostState();
  await ext.start({
    config: config({ providerName: rp.name, mode: 'enforce', schedule: '0 0 1 1 *' }),
    log: captured,
    hostPath: hostPathResolver('/'),
    env: ks.osEnv(ADMIN),
    state,
    ...contextTools(),
    signal: new AbortController().signal,
  });
  t.teardown(() => ext.stop());
  const drift = () => lines.filter((l) => /^vTPM trait drift/.test(l.msg)).map((l) => `${l.level === 40 ? 'warn' : l.level === 30 ? 'info' : l.level}:${l.msg}`);
  state.completeCycle();
  await ext.idle();
  for (let i = 0; i < 5; i++) {
    ext.trigger();
    await ext.idle();
  }
  t.same(drift(), ['warn:vTPM trait drift'], 'six passes of the same drift: one warning');
  verdict = hostVerdict({ failing: ['1.2', '2.0'] });
  state.completeCycle();
  await ext.idle();
  ext.trigger();
  await ext.idle();
  t.same(drift(), ['warn:vTPM trait drift', 'warn:vTPM trait drift'], 'a different drift: one more warning');
  verdict = hostVerdict();
  state.completeCycle();
  await ext.idle();
  ext.trigger();
  await ext.idle();
  t.same(drift(), ['warn:vTPM trait drift', 'warn:vTPM trait drift', 'info:vTPM trait drift cleared'], 'and one line when it ends');
});
