import t from 'tap';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import { HostFacts } from '../../src/host/facts.js';
import { runProbe } from '../../src/probes/runner.js';
import type { Probe } from '../../src/probes/types.js';
import { ProbeScheduler } from '../../src/scheduler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { testStateFiles } from '../fixtures/state-files.js';

const log = pino({ level: 'silent' });
const { config } = await loadConfig({ env: {}, overrides: ['probes.timeoutSeconds=0.2', 'probes.concurrency=2'], path: '/dev/null' });
const base = { config, log, hostPath: hostPathResolver('/'), env: process.env, results: new HostState(), stateFiles: testStateFiles(), facts: new HostFacts({ config, hostPath: hostPathResolver('/') }) };

t.test('a probe that throws gives a failed result with a coded error', async (t) => {
  const probe: Probe = { name: 'thrower', description: '', run: async () => { throw new Error('boom'); } };
  const result = await runProbe(probe, base);
  t.equal(result.ok, false);
  t.match(result.error, { code: 'VTPM_ERR_PROBE_FAILED', message: 'boom' });
});

t.test('a probe that hangs is abandoned at its timeout and sees its signal aborted', async (t) => {
  let aborted = false;
  const probe: Probe = {
    name: 'hangs',
    description: '',
    run: (ctx) => new Promise(() => ctx.signal.addEventListener('abort', () => (aborted = true))),
  };
  const result = await runProbe(probe, base);
  t.equal(result.ok, false);
  t.equal(result.error?.code, 'VTPM_ERR_PROBE_TIMEOUT');
  t.ok(aborted, 'the probe was told to stop');
});

t.test('the agent-wide signal aborts a running probe', async (t) => {
  const controller = new AbortController();
  const probe: Probe = {
    name: 'long',
    description: '',
    timeoutMs: () => 10_000,
    run: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('stopped')))),
  };
  const pending = runProbe(probe, { ...base, signal: controller.signal });
  controller.abort();
  const result = await pending;
  t.equal(result.ok, false);
  t.equal(result.error?.message, 'stopped');
});

t.test('last success survives later failures', async (t) => {
  const state = new HostState();
  let fail = false;
  const probe: Probe = { name: 'flaky', description: '', run: async () => { if (fail) throw new Error('down'); return 1; } };
  state.set(await runProbe(probe, base));
  const firstSuccess = state.get('flaky')!.lastSuccessAt;
  t.type(firstSuccess, 'number');
  fail = true;
  state.set(await runProbe(probe, base));
  t.equal(state.get('flaky')!.ok, false);
  t.equal(state.get('flaky')!.lastSuccessAt, firstSuccess);
});

t.test('scheduler: dependencies run first, concurrency is capped, a probe never overlaps itself', async (t) => {
  const state = new HostState();
  const order: string[] = [];
  let active = 0;
  let maxActive = 0;
  const slow = (name: string, after?: string[]): Probe => ({
    name,
    description: '',
    after,
    timeoutMs: () => 5000,
    run: async (_ctx, results) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      order.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, 50));
      active -= 1;
      order.push(`end ${name}`);
      return after?.map((a) => results.get(a)?.ok) ?? null;
    },
  });
  const probes = [slow('c', ['a', 'b']), slow('a'), slow('b'), slow('d'), slow('e')];
  const scheduler = new ProbeScheduler({ probes, config, log, hostPath: hostPathResolver('/'), env: process.env, state, stateFiles: testStateFiles(), signal: new AbortController().signal });
  await Promise.all([scheduler.runCycle(), scheduler.runCycle()]);
  t.equal(maxActive, 2, 'never more than probes.concurrency at once');
  t.ok(order.indexOf('start c') > order.indexOf('end a') && order.indexOf('start c') > order.indexOf('end b'), 'c ran after a and b');
  t.same(state.get('c')!.data, [true, true], 'c saw the results of a and b');
  t.equal(order.filter((o) => o === 'start a').length, 1, 'the second cycle did not start a again while it ran');
  t.equal(scheduler.skipped.get('a'), 1, 'the overlapping tick was counted');
});

t.test('scheduler: a dependency cycle is reported, not a hang', async (t) => {
  const probe = (name: string, after: string[]): Probe => ({ name, description: '', after, run: async () => 1 });
  const scheduler = new ProbeScheduler({
    probes: [probe('x', ['y']), probe('y', ['x'])],
    config,
    log,
    hostPath: hostPathResolver('/'),
    env: process.env,
    state: new HostState(),
    stateFiles: testStateFiles(),
    signal: new AbortController().signal,
  });
  await t.rejects(scheduler.runCycle(), { message: /dependency cycle/ });
});

t.test('scheduler: a probe that ignores its timeout keeps its slot until it really ends, so runs never overlap', async (t) => {
  const state = new HostState();
  let active = 0;
  let overlapped = false;
  let release!: () => void;
  const stuck = new Promise<void>((r) => (release = r));
  const straggler: Probe = {
    name: 'straggler',
    description: '',
    timeoutMs: () => 50,
    run: async () => {
      active += 1;
      if (active > 1) overlapped = true;
      await stuck; // ignores its abort signal
      active -= 1;
      return 1;
    },
  };
  const scheduler = new ProbeScheduler({ probes: [straggler], config, log, hostPath: hostPathResolver('/'), env: process.env, state, stateFiles: testStateFiles(), signal: new AbortController().signal });
  await scheduler.runCycle();
  t.equal(state.get('straggler')!.error?.code, 'VTPM_ERR_PROBE_TIMEOUT', 'the timeout is published at once');
  await scheduler.runCycle();
  t.equal(scheduler.skipped.get('straggler'), 1, 'the next tick is skipped while the straggler still runs');
  release();
  await new Promise((r) => setTimeout(r, 20));
  await scheduler.runCycle();
  t.equal(state.get('straggler')!.ok, true, 'it runs again once the straggler has ended');
  t.equal(overlapped, false);
});

t.test('liveness: a probe whose work outlives its timeout by the grace is reported stuck; healthy ones are not', async (t) => {
  const state = new HostState();
  const quick: Probe = { name: 'quick', description: '', schedule: () => '* * * * * *', run: async () => 1 };
  // Ignores its abort signal and never settles: it holds a concurrency slot for good.
  const stuck: Probe = { name: 'stuck', description: '', schedule: () => '* * * * * *', run: () => new Promise(() => {}) };
  const controller = new AbortController();
  const scheduler = new ProbeScheduler({ probes: [quick, stuck], config, log, hostPath: hostPathResolver('/'), env: process.env, state, stateFiles: testStateFiles(), signal: controller.signal, overdueGraceMs: 300 });
  t.teardown(async () => {
    controller.abort();
    // stop() gives stragglers 3 s on an unref'd timer; keep the loop alive meanwhile (the agent's server does).
    const keepAlive = setTimeout(() => {}, 5000);
    await scheduler.stop();
    clearTimeout(keepAlive);
  });
  void scheduler.start();
  await new Promise((r) => setTimeout(r, 150));
  t.same(scheduler.stalls(), { overdueSchedules: [], stuckProbes: [] }, 'within timeout + grace: nothing stalls');
  await new Promise((r) => setTimeout(r, 1500));
  const stalls = scheduler.stalls();
  t.same(stalls.stuckProbes.map((p) => p.probe), ['stuck'], 'the straggler is stuck');
  t.same(stalls.overdueSchedules, [], 'the schedule itself keeps ticking (the stuck probe\'s ticks are skipped and counted)');
  t.ok((scheduler.skipped.get('stuck') ?? 0) >= 1);
});

t.test('liveness: a schedule whose tick does not come is overdue', async (t) => {
  const state = new HostState();
  const probe: Probe = { name: 'every-second', description: '', schedule: () => '* * * * * *', run: async () => 1 };
  const scheduler = new ProbeScheduler({ probes: [probe], config, log, hostPath: hostPathResolver('/'), env: process.env, state, stateFiles: testStateFiles(), signal: new AbortController().signal, overdueGraceMs: 300 });
  await scheduler.start();
  t.same(scheduler.stalls().overdueSchedules, []);
  // As if the cron loop had stopped: no tick for 3 s.
  const later = performance.now() + 3000; // monotonic, as stalls() measures
  const overdue = scheduler.stalls(later).overdueSchedules;
  t.equal(overdue.length, 1);
  t.same(overdue[0]?.probes, ['every-second']);
  t.ok(overdue[0]!.overdueSeconds >= 1);
  await scheduler.stop();
  t.same(scheduler.stalls(later), { overdueSchedules: [], stuckProbes: [] }, 'a stopped scheduler watches nothing');
});

t.test('liveness: time a cycle spends waiting for the concurrency cap is not lateness', async (t) => {
  const state = new HostState();
  // Two slow probes fill both slots (concurrency 2) for 1.5 s at a time; the quick schedule queues behind them.
  const slow = (name: string): Probe => ({ name, description: '', schedule: () => '*/5 * * * * *', timeoutMs: () => 3000, run: () => new Promise((r) => setTimeout(() => r(1), 1500)) });
  const quick: Probe = { name: 'queued', description: '', schedule: () => '* * * * * *', run: async () => 1 };
  const controller = new AbortController();
  const scheduler = new ProbeScheduler({ probes: [slow('slow-a'), slow('slow-b'), quick], config, log, hostPath: hostPathResolver('/'), env: process.env, state, stateFiles: testStateFiles(), signal: controller.signal, overdueGraceMs: 200 });
  t.teardown(async () => {
    controller.abort();
    await scheduler.stop();
  });
  void scheduler.start();
  const seen: string[][] = [];
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 250));
    seen.push(scheduler.stalls().overdueSchedules.map((o) => o.schedule));
  }
  t.same(seen.flat(), [], 'never overdue while queued behind the busy slots (3 s of samples)');
});
