import t from 'tap';
import cron from 'node-cron';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { Probe } from '../../src/probes/types.js';
import { ProbeScheduler } from '../../src/scheduler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { delayToNextSlotMs, scheduleIntervalMs, splayFraction, splayIdentity, splayOffsetMs, splayWait } from '../../src/util/splay.js';
import { testStateFiles } from '../fixtures/state-files.js';

const hosts = Array.from({ length: 2000 }, (_, i) => `compute-${String(i).padStart(4, '0')}.region-a.example.org`);

t.test('the offset is stable: the same identity always gets the same offset, a different one another', async (t) => {
  const a = splayOffsetMs('compute-0001.example.org placement-reconcile', 300_000, 300);
  t.equal(splayOffsetMs('compute-0001.example.org placement-reconcile', 300_000, 300), a, 'same input, same offset');
  t.equal(splayFraction('x'), splayFraction('x'));
  t.not(splayOffsetMs('compute-0002.example.org placement-reconcile', 300_000, 300), a, 'another host, another slot');
  // Pinned values: a change of hash would silently move every host of a fleet to a new slot.
  t.equal(splayFraction('compute-0001.example.org'), 0.6081499800843737);
  t.equal(a, 252_698);
});

t.test('offsets stay inside min(splay, interval) and 0 disables splay', async (t) => {
  for (const h of hosts.slice(0, 200)) {
    const o = splayOffsetMs(h, 300_000, 60);
    t.ok(o >= 0 && o < 60_000, `${h}: ${o} within the 60 s splay window`);
    const p = splayOffsetMs(h, 10_000, 300);
    if (!(p >= 0 && p < 10_000)) t.fail(`${h}: ${p} beyond the 10 s interval`);
  }
  t.equal(splayOffsetMs(hosts[0]!, 300_000, 0), 0, 'splay 0: no offset');
  t.equal(splayOffsetMs(hosts[0]!, null, 300), 0, 'unknown interval: no offset');
});

t.test('offsets of a fleet spread evenly over the window (no bucket far from its share)', async (t) => {
  const buckets = new Array<number>(20).fill(0);
  for (const h of hosts) buckets[Math.floor(splayOffsetMs(`${h} placement-reconcile`, 300_000, 300) / 15_000)]! += 1;
  const expected = hosts.length / buckets.length; // 100
  const chi2 = buckets.reduce((s, n) => s + (n - expected) ** 2 / expected, 0);
  // 19 degrees of freedom: p = 0.001 at 43.8; a clumping hash (all in one second) gives ~38,000.
  t.ok(chi2 < 43.8, `chi-square ${chi2.toFixed(1)} over 20 buckets: ${buckets.join(' ')}`);
  t.ok(Math.max(...buckets) < 2 * expected, 'no bucket holds twice its share');
  // What the issue is about: peak per second without and with splay.
  const perSecond = new Map<number, number>();
  for (const h of hosts) {
    const s = Math.floor(splayOffsetMs(`${h} placement-reconcile`, 300_000, 300) / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
  }
  t.ok(Math.max(...perSecond.values()) <= 20, `2000 hosts: at most ${Math.max(...perSecond.values())} start in the same second (2000 without splay)`);
});

t.test('schedule interval from node-cron: the shortest gap between runs', async (t) => {
  const every5 = cron.createTask('*/5 * * * *', () => undefined);
  t.equal(scheduleIntervalMs(every5), 300_000);
  const twice = cron.createTask('0 9,17 * * *', () => undefined);
  t.equal(scheduleIntervalMs(twice), 8 * 3600_000, 'irregular: the shorter gap (9→17)');
  const seconds = cron.createTask('*/10 * * * * *', () => undefined);
  t.equal(scheduleIntervalMs(seconds), 10_000);
  for (const task of [every5, twice, seconds]) await task.destroy();
});

t.test('plain-interval loops: the next slot is wall-clock aligned and never now', async (t) => {
  t.equal(delayToNextSlotMs(1_000_000, 600_000, 0), 200_000, 'epoch-aligned slot');
  t.equal(delayToNextSlotMs(1_000_000, 600_000, 250_000), 450_000, 'slots at 250 s + k·600 s: next at 1450 s');
  t.equal(delayToNextSlotMs(1_200_000, 600_000, 0), 600_000, 'exactly at the slot: the next one, not 0');
  // Two agents started at different times land in the same slot.
  const a = 5_000 + delayToNextSlotMs(5_000, 60_000, 42_000);
  const b = 31_000 + delayToNextSlotMs(31_000, 60_000, 42_000);
  t.equal(a, b);
});

t.test('identity: configured provider / Nova host name first, else the OS host name', async (t) => {
  t.equal(splayIdentity({ providerName: 'rp.example.org', novaHost: 'nova.example.org' }, 'os'), 'rp.example.org');
  t.equal(splayIdentity({ providerName: null, novaHost: 'nova.example.org' }, 'os'), 'nova.example.org');
  t.equal(splayIdentity({ providerName: null, novaHost: null }, 'os'), 'os');
});

t.test('splayWait: resolves after the delay, false at once on abort', async (t) => {
  const started = Date.now();
  t.equal(await splayWait(50), true);
  t.ok(Date.now() - started >= 45);
  const c = new AbortController();
  const p = splayWait(10_000, c.signal);
  c.abort();
  t.equal(await p, false);
  t.equal(await splayWait(0), true);
});

t.test('scheduler: each tick runs its cycle at the host offset after the tick, and splay 0 runs it on the tick', async (t) => {
  const log = pino({ level: 'silent' });
  const runsAt = async (splay: number, identity: string): Promise<{ offsetMs: number; phases: number[] }> => {
    const { config } = await loadConfig({ path: '/dev/null', env: {}, overrides: [`splay=${splay}`, 'probes.schedule=*/2 * * * * *'] });
    const times: number[] = [];
    const probe: Probe = { name: 'p', description: '', run: async () => times.push(Date.now()) };
    const controller = new AbortController();
    const scheduler = new ProbeScheduler({ probes: [probe], config, log, hostPath: hostPathResolver('/'), env: {}, state: new HostState(), stateFiles: testStateFiles(), signal: controller.signal, splayIdentity: identity });
    await scheduler.start();
    times.length = 0; // the first cycle at start is not splayed
    await new Promise((r) => setTimeout(r, 4500));
    const offsetMs = scheduler.splayOffsets()[0]!.offsetMs;
    controller.abort();
    await scheduler.stop();
    return { offsetMs, phases: times.map((at) => at % 2000) };
  };
  // An identity whose offset is well inside the 2 s interval.
  const identity = hosts.find((h) => {
    const o = splayOffsetMs(`${h} */2 * * * * *`, 2000, 300);
    return o > 900 && o < 1300;
  })!;
  const splayed = await runsAt(300, identity);
  t.ok(splayed.offsetMs > 900 && splayed.offsetMs < 1300, `offset ${splayed.offsetMs} ms`);
  t.ok(splayed.phases.length >= 1, `ran ${splayed.phases.length} time(s) on schedule`);
  // Timers never fire early; a loaded machine may make them late (so only lateness gets slack).
  for (const ph of splayed.phases) t.ok(ph >= splayed.offsetMs - 50 && ph < splayed.offsetMs + 650, `run ${ph} ms after the tick ≈ offset ${splayed.offsetMs}`);
  const plain = await runsAt(0, identity);
  t.equal(plain.offsetMs, 0);
  for (const ph of plain.phases) t.ok(ph < 650, `splay 0: run ${ph} ms after the tick`);
});
