/**
 * Two writers on one resource provider in a real Placement: the agent (enforce mode, its owned
 * traits flipping every round) and a stand-in for nova-compute changing its own traits in a loop,
 * both with the provider generation. After hundreds of rounds neither writer's traits are lost,
 * and real 409 placement.concurrent_update answers were hit and handled.
 */
import pino from 'pino';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { openSession } from '../../src/openstack/index.js';
import type { OpenStackSession } from '../../src/openstack/session.js';
import { PlacementReconciler, type ReconcileResult } from '../../src/placement/reconciler.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { startKeystone } from '../harness/keystone.js';
import { hostVerdict, PLACEMENT_MICROVERSION, startPlacement } from '../harness/placement.js';

const ROUNDS = 200;
const log = pino({ level: 'silent' });
const AGENT = { name: 'vtpm-agent', password: 'agent-pw', project: 'service', roles: ['admin'] };
const NOVA = { name: 'nova', password: 'nova-pw', project: 'service', roles: ['admin', 'service'] };

const ks = await startKeystone({ users: [AGENT, NOVA] });
t.teardown(() => ks.stop());
const pl = await startPlacement(ks);
t.teardown(() => pl.stop());

const NOVA_BASE = ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'COMPUTE_NET_ATTACH_INTERFACE'];
const NOVA_TOGGLED = ['CUSTOM_NOVA_A', 'CUSTOM_NOVA_B', 'CUSTOM_NOVA_C', 'HW_CPU_X86_AVX', 'HW_CPU_X86_SSE42', 'COMPUTE_STATUS_DISABLED'];
const isNova = (trait: string) => !trait.startsWith('CUSTOM_VTPM_');

function session(env: Record<string, string>): OpenStackSession {
  const opened = openSession(configSchema.parse({ openstack: { retryBaseDelaySeconds: 0.05 } }).openstack, { env, log });
  if (opened.state !== 'ready') throw new Error(opened.state);
  t.teardown(() => opened.session.close());
  return opened.session;
}

/** nova-compute's read-modify-write of its own traits: keeps whatever else is there. */
async function novaWriter(s: OpenStackSession, uuid: string, stop: () => boolean) {
  const path = `/resource_providers/${uuid}/traits`;
  const stats = { rounds: 0, writes: 0, conflicts: 0, lastWritten: [] as string[] };
  const h = { microversion: PLACEMENT_MICROVERSION };
  for (const trait of NOVA_TOGGLED.filter((x) => x.startsWith('CUSTOM_'))) await s.request('placement', `/traits/${trait}`, { ...h, method: 'PUT' });
  while (!stop()) {
    stats.rounds += 1;
    // Round n: base traits plus a changing subset of the toggled ones.
    const mine = [...NOVA_BASE, ...NOVA_TOGGLED.filter((_, i) => ((stats.rounds >> i) & 1) === 1)].sort();
    for (;;) {
      const cur = await s.request<{ traits: string[]; resource_provider_generation: number }>('placement', path, h);
      const others = cur.body!.traits.filter((x) => !isNova(x));
      const next = [...new Set([...others, ...mine])];
      const res = await s.request<{ traits: string[] }>('placement', path, {
        ...h,
        method: 'PUT',
        json: { traits: next, resource_provider_generation: cur.body!.resource_provider_generation },
        accept: [409],
      });
      if (res.status === 200) {
        stats.writes += 1;
        stats.lastWritten = mine;
        break;
      }
      stats.conflicts += 1;
      // Like nova's retry decorator: wait a little before re-reading, so both writers progress.
      await new Promise((r) => setTimeout(r, Math.random() * 40));
    }
    await new Promise((r) => setTimeout(r, Math.random() * 20));
  }
  return stats;
}

t.test(`agent and a nova-compute stand-in write the same provider for ${ROUNDS} rounds`, async (t) => {
  const rp = await pl.createProvider('concurrency.example.org');
  await pl.setTraits(rp.uuid, NOVA_BASE);
  const cfg = configSchema.parse({ placement: { computeIdPath: null, providerName: rp.name, mode: 'enforce', verifiedTraits: true, maxConflictAttempts: 10 } });
  const agentSession = session(ks.osEnv(AGENT));
  const rec = new PlacementReconciler({ session: agentSession, config: cfg.placement, hostPath: hostPathResolver('/'), libvirtHostname: async () => null, log });

  let agentDone = false;
  const nova = novaWriter(session(ks.osEnv(NOVA)), rp.uuid, () => agentDone);
  const results: ReconcileResult[] = [];
  const expectedOwned: string[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // The verdict flips every round, so the agent's owned traits change every round.
    const failing = round % 2 === 0 ? (['2.0'] as const) : ([] as const);
    results.push(await rec.reconcile(hostVerdict({ failing: [...failing] })));
    expectedOwned.push(
      failing.length
        ? ['CUSTOM_VTPM_DEGRADED', 'CUSTOM_VTPM_VERIFIED_TPM_1_2_TIS']
        : ['CUSTOM_VTPM_VERIFIED_TPM_1_2_TIS', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_CRB', 'CUSTOM_VTPM_VERIFIED_TPM_2_0_TIS'],
    );
  }
  agentDone = true;
  const novaStats = await nova;

  const failed = results.filter((r) => r.error);
  t.same(failed.map((r) => r.error), [], 'every reconcile succeeded');
  t.ok(results.every((r) => r.wrote), 'the agent wrote in every round');
  const conflicts = rec.counters.conflicts;
  t.ok(conflicts > 0, `the agent hit real 409s and handled them (${conflicts})`);
  t.equal(rec.counters.apiErrors.get('placement 409') ?? 0, conflicts, 'each counted conflict was a 409 from Placement');
  t.ok(novaStats.rounds >= 20, `nova wrote concurrently (${novaStats.rounds} rounds, ${novaStats.conflicts} conflicts)`);
  t.ok(novaStats.conflicts > 0, 'the nova stand-in was pushed back by the agent too');
  t.equal(results.reduce((n, r) => n + r.conflicts, 0), conflicts);

  // After each agent pass, the provider held the agent's owned traits and nova traits only.
  for (const [i, r] of results.entries()) {
    const owned = r.traits!.filter((x) => !isNova(x));
    if (JSON.stringify(owned) !== JSON.stringify(expectedOwned[i])) t.fail(`round ${i}: owned traits ${owned} != ${expectedOwned[i]}`);
    if (!NOVA_BASE.every((x) => r.traits!.includes(x))) t.fail(`round ${i}: a nova base trait was lost: ${r.traits}`);
  }

  const final = await pl.getTraits(rp.uuid);
  t.same(final.traits.filter(isNova), novaStats.lastWritten, "nova's last write is intact");
  t.same(final.traits.filter((x) => !isNova(x)), expectedOwned.at(-1), "the agent's last write is intact");
  t.comment(`agent: ${ROUNDS} rounds, ${rec.counters.writes} writes, ${conflicts} conflicts; nova: ${novaStats.rounds} rounds, ${novaStats.writes} writes, ${novaStats.conflicts} conflicts`);
});
