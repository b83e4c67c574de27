import t from 'tap';
import { Registry } from 'prom-client';
import type { SecretCheck } from '../../src/barbican/client.js';
import { registerPreflightMetrics } from '../../src/barbican/metrics.js';
import { Preflight, preflightTargets, type PreflightTarget } from '../../src/barbican/preflight.js';
import type { GuestInventory, SecretMode, VtpmGuest } from '../../src/guests/types.js';
import { guest, inventory as inventoryOf } from '../fixtures/guests.js';

/** Guest n with the given secret mode and secret (null: no encryption secret). */
function guestN(n: number, mode: SecretMode, secret: string | null): VtpmGuest {
  const uuid = `0000000${n}-0000-4000-8000-00000000000${n}`;
  return guest(uuid, { name: `instance-0000000${n}`, encryptionSecret: secret, secretMode: mode });
}

const inventory: GuestInventory = {
  ...inventoryOf([
    guestN(1, 'user', 'aaaaaaaa-0000-4000-8000-000000000001'),
    guestN(2, 'host', 'aaaaaaaa-0000-4000-8000-000000000002'),
    guestN(3, 'deployment', 'aaaaaaaa-0000-4000-8000-000000000003'),
    guestN(4, 'unknown', 'aaaaaaaa-0000-4000-8000-000000000004'),
    guestN(5, 'user', null),
    { ...guestN(6, 'user', 'aaaaaaaa-0000-4000-8000-000000000006'), instanceUuid: null },
  ]),
  collectedAt: 1,
};

t.test('targets: Nova guests whose restart needs Barbican and that have a secret', async (t) => {
  t.same(
    preflightTargets(inventory).map((x) => [x.instanceUuid.slice(0, 8), x.mode]),
    [['00000001', 'user'], ['00000003', 'deployment'], ['00000004', 'unknown']],
  );
  t.same(preflightTargets(undefined), []);
});

t.test('caching, spreading, concurrency cap and counts', async (t) => {
  let clock = 0;
  const answers = new Map<string, SecretCheck['result']>();
  let inFlight = 0;
  let maxInFlight = 0;
  const calls: Array<{ id: string; at: number }> = [];
  const sleeps: number[] = [];
  const p = new Preflight({
    ttlMs: 1000,
    concurrency: 2,
    spreadMs: 300,
    now: () => clock,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    check: async (target: PreflightTarget) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      calls.push({ id: target.instanceUuid.slice(0, 8), at: clock });
      await new Promise((r) => setImmediate(r));
      inFlight -= 1;
      const result = answers.get(target.instanceUuid.slice(0, 8)) ?? 'ok';
      return { result, reason: result === 'ok' ? null : result === 'unavailable' ? 'unavailable' : result, detail: result, payloadChecked: false };
    },
  });
  const targets = preflightTargets(inventory);
  answers.set('00000003', 'forbidden');
  await p.run(targets, new AbortController().signal);
  t.equal(calls.length, 3, 'every target checked once');
  t.ok(maxInFlight <= 2, 'at most two requests at once');
  t.ok(sleeps.length >= 1 && sleeps.every((s) => s > 0 && s <= 300), 'requests are spread over the window');
  t.same(p.countsByResult(), { ok: 2, forbidden: 1, not_found: 0, unauthenticated: 0, unavailable: 0 });
  t.equal(p.failures.forbidden, 1);

  calls.length = 0;
  clock += 10;
  await p.run(targets, new AbortController().signal);
  t.same(calls.map((c) => c.id), ['00000003'], 'within the TTL only the failed one is checked again');

  calls.length = 0;
  clock += 2000;
  answers.set('00000003', 'ok');
  answers.set('00000001', 'not_found');
  await p.run(targets.slice(0, 2), new AbortController().signal);
  t.same(calls.map((c) => c.id).sort(), ['00000001', '00000003'], 'after the TTL everything again');
  t.equal(p.current().length, 2, 'a guest that is gone is forgotten');
  t.equal(p.resultFor(targets[0]!.instanceUuid)?.result, 'not_found');
  t.same(p.checksByResult, { ok: 3, forbidden: 2, not_found: 1, unauthenticated: 0, unavailable: 0 });

  const registry = new Registry();
  registerPreflightMetrics(registry, () => p);
  const text = await registry.metrics();
  t.match(text, /vtpm_barbican_guest_secret_accessible\{instance_uuid="00000001-0000-4000-8000-000000000001",secret_mode="user",result="not_found"\} 0/);
  t.match(text, /vtpm_barbican_guest_secret_accessible\{instance_uuid="00000003-0000-4000-8000-000000000003",secret_mode="deployment",result="ok"\} 1/);
  t.match(text, /vtpm_barbican_failures_total\{source="preflight",reason="forbidden"\} 2/);
  t.match(text, /vtpm_barbican_preflight_guests\{result="not_found"\} 1/);
});

t.test('an abort ends a round that is waiting for its slot', async (t) => {
  const ac = new AbortController();
  const p = new Preflight({ ttlMs: 0, concurrency: 1, spreadMs: 60_000, check: async () => ({ result: 'ok', reason: null, detail: '', payloadChecked: false }) });
  const round = p.run(preflightTargets(inventory), ac.signal);
  setImmediate(() => ac.abort(new Error('stop')));
  await t.rejects(round);
});
