import { pino } from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import type { Probe } from '../../src/probes/types.js';
import { probeKey } from '../../src/results.js';
import { ProbeScheduler } from '../../src/scheduler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { testStateFiles } from '../fixtures/state-files.js';

const log = pino({ level: 'silent' });
const KEY = probeKey<number>('counted');

/** A probe that numbers its runs; each run waits until the test releases it (or its signal aborts). */
function countedProbe(extra: Partial<Probe<number>> = {}) {
  let runs = 0;
  const waiting: Array<() => void> = [];
  const probe: Probe<number> = {
    name: KEY,
    description: '',
    run: async (ctx) => {
      const n = ++runs;
      await new Promise<void>((resolve, reject) => {
        waiting.push(resolve);
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true });
      });
      return n;
    },
    ...extra,
  };
  return {
    probe,
    runs: () => runs,
    /** Lets every run waiting now finish. */
    release: () => waiting.splice(0).forEach((r) => r()),
    /** Resolves once `n` runs are waiting to be released. */
    waitingFor: async (n: number) => {
      while (waiting.length < n) await new Promise((r) => setTimeout(r, 5));
    },
  };
}

async function setup(t: { teardown(fn: () => unknown): void }, probe: Probe<number>, overrides: string[] = []) {
  const config = (await loadConfig({ env: {}, path: '/dev/null', overrides })).config;
  const controller = new AbortController();
  const state = new HostState();
  const scheduler = new ProbeScheduler({ probes: [probe as Probe], config, log, hostPath: hostPathResolver('/'), env: {}, state, stateFiles: testStateFiles(), signal: controller.signal });
  t.teardown(async () => {
    controller.abort();
    await scheduler.stop();
  });
  return { scheduler, state, controller };
}

t.test('refresh when idle: one run, its result in the state and returned', async (t) => {
  const c = countedProbe();
  const { scheduler, state } = await setup(t, c.probe);
  const pending = scheduler.refresh(KEY);
  await c.waitingFor(1);
  c.release();
  const result = await pending;
  t.equal(c.runs(), 1);
  t.equal(result?.ok, true);
  t.equal(result?.data, 1);
  t.equal(state.get(KEY), result, 'the same result as the state holds (last success filled in)');
  t.ok(result?.lastSuccessAt);
  t.equal(await scheduler.refresh(probeKey<number>('unknown')), undefined, 'an unknown probe: undefined, nothing runs');
});

t.test('requests during an on-demand run: exactly one extra run, shared by all', async (t) => {
  const c = countedProbe();
  const { scheduler, state } = await setup(t, c.probe);
  const first = scheduler.refresh(KEY);
  await c.waitingFor(1);
  const later = Array.from({ length: 5 }, () => scheduler.refresh(KEY));
  c.release();
  await c.waitingFor(1);
  t.equal(c.runs(), 2, 'the five requests made one more run, started after the first ended');
  c.release();
  const results = await Promise.all([first, ...later]);
  t.equal(c.runs(), 2);
  t.same(results.map((r) => r?.data), [2, 2, 2, 2, 2, 2], 'everyone gets the run that began after their request');
  t.equal(state.get(KEY)?.data, 2);
  // Idle again: the next request makes one run of its own.
  const again = scheduler.refresh(KEY);
  await c.waitingFor(1);
  c.release();
  t.equal((await again)?.data, 3);
});

t.test('a request during a scheduled run waits for it, then runs once more; a tick during a refresh takes its result', async (t) => {
  const c = countedProbe();
  const { scheduler, state } = await setup(t, c.probe);
  const cycle = scheduler.runCycle();
  await c.waitingFor(1);
  const refreshed = scheduler.refresh(KEY);
  c.release();
  await cycle;
  t.equal(state.get(KEY)?.data, 1, "the tick's result is published");
  await c.waitingFor(1);
  t.equal(c.runs(), 2, 'the refresh runs after the tick, not instead of it');
  // A tick now meets the on-demand run: it waits for that result instead of being skipped.
  const tick = scheduler.runCycle();
  c.release();
  t.equal((await refreshed)?.data, 2);
  await tick;
  t.equal(c.runs(), 2, 'the tick did not run the probe again');
  t.same([...scheduler.skipped], [], 'and is not counted as skipped');
});

t.test('refresh runs a probe the configuration does not schedule', async (t) => {
  const c = countedProbe({ enabled: () => false });
  const { scheduler, state } = await setup(t, c.probe);
  t.same(scheduler.probes, [], 'not scheduled');
  await scheduler.runCycle();
  t.equal(c.runs(), 0);
  const pending = scheduler.refresh(KEY);
  await c.waitingFor(1);
  c.release();
  t.equal((await pending)?.data, 1);
  t.equal(state.get(KEY)?.data, 1);
});

t.test('refresh resolves when the agent is stopping, whatever it waits for', async (t) => {
  // A straggler that ignores its abort holds the probe; a request waits for it until the agent stops.
  let release!: () => void;
  const hung: Probe<number> = { name: KEY, description: '', timeoutMs: () => 50, run: () => new Promise((r) => (release = () => r(0))) };
  const { scheduler, state, controller } = await setup(t, hung as Probe<number>);
  await scheduler.runCycle();
  t.equal(state.get(KEY)?.error?.code, 'VTPM_ERR_PROBE_TIMEOUT');
  let settled = false;
  const waiting = scheduler.refresh(KEY).finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(settled, false, 'waits while the straggler holds the probe');
  controller.abort(new Error('agent stopping'));
  t.equal(await waiting, undefined, 'resolves at once when the agent stops');
  t.equal(await scheduler.refresh(KEY), undefined, 'and a request after that runs nothing');
  release();
});

t.test('scheduler.stop() ends a waiting refresh too', async (t) => {
  const c = countedProbe();
  const { scheduler } = await setup(t, c.probe);
  const first = scheduler.refresh(KEY);
  await c.waitingFor(1);
  const second = scheduler.refresh(KEY);
  const stopped = scheduler.stop();
  t.equal(await first, undefined);
  t.equal(await second, undefined);
  c.release();
  await stopped;
  t.equal(c.runs(), 1, 'no extra run after stop');
});
