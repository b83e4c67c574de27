import { pino } from 'pino';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import type { Probe } from '../../src/probes/types.js';
import { ProbeScheduler } from '../../src/scheduler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { testStateFiles } from '../fixtures/state-files.js';

const log = pino({ level: 'silent' });
const configWith = async (overrides: string[]) => (await loadConfig({ env: {}, path: '/dev/null', overrides })).config;

/** Probes scheduled by config keys, as the real ones are (emulation.schedule, identity.schedule). */
function probes(runs: string[]): Probe[] {
  const make = (name: string, extra: Partial<Probe>): Probe => ({
    name,
    description: '',
    run: async (ctx) => {
      runs.push(`${name}:${ctx.config.libvirt.uri}`);
      return 1;
    },
    ...extra,
  });
  return [
    make('plain', {}),
    make('ident', { schedule: (c) => c.identity.schedule }),
    make('emu', { schedule: (c) => c.emulation.schedule, enabled: (c) => c.emulation.enabled }),
  ];
}

t.test('reconfigure: only schedules whose expression or probe set changed get new tasks; new probes run at once', async (t) => {
  const runs: string[] = [];
  const controller = new AbortController();
  const state = new HostState();
  const config = await configWith(['emulation.enabled=false', 'identity.schedule=*/15 * * * *']);
  const scheduler = new ProbeScheduler({ probes: probes(runs), config, log, hostPath: hostPathResolver('/'), env: {}, state, stateFiles: testStateFiles(), signal: controller.signal });
  t.teardown(() => scheduler.stop());
  t.same(
    scheduler.reconfigure(config, hostPathResolver('/')),
    { schedulesStarted: [], schedulesStopped: [], probesAdded: [], probesRemoved: [] },
    'before start nothing is scheduled',
  );
  await scheduler.start();
  t.same(runs.sort(), ['ident:qemu:///system', 'plain:qemu:///system']);

  // A setting the probes read, no schedule change: no task is touched; the next run sees it.
  const uri = await configWith(['emulation.enabled=false', 'identity.schedule=*/15 * * * *', 'libvirt.uri=qemu:///session']);
  t.same(scheduler.reconfigure(uri, hostPathResolver('/')), { schedulesStarted: [], schedulesStopped: [], probesAdded: [], probesRemoved: [] });
  runs.length = 0;
  await scheduler.runCycle();
  t.same(runs.sort(), ['ident:qemu:///session', 'plain:qemu:///session'], 'probes read the new configuration');

  // One probe's schedule changes: only its task is replaced.
  const moved = await configWith(['emulation.enabled=false', 'identity.schedule=*/17 * * * *']);
  const r1 = scheduler.reconfigure(moved, hostPathResolver('/'));
  t.same(r1.schedulesStarted, ['*/17 * * * * (ident)']);
  t.same(r1.schedulesStopped, ['*/15 * * * * (ident)']);

  // A probe switched on joins (its own schedule) and runs at once; switched off, it leaves.
  runs.length = 0;
  const on = await configWith(['emulation.enabled=true', 'emulation.schedule=*/10 * * * *', 'identity.schedule=*/17 * * * *']);
  const r2 = scheduler.reconfigure(on, hostPathResolver('/'));
  t.same(r2.probesAdded.map((p) => p.name), ['emu']);
  t.same(r2.schedulesStarted, ['*/10 * * * * (emu)']);
  await new Promise((r) => setTimeout(r, 50));
  t.same(runs, ['emu:qemu:///system'], 'the new probe ran once, the others did not');
  t.ok(state.get('plain'), 'results of the others are kept');
  const r3 = scheduler.reconfigure(moved, hostPathResolver('/'));
  t.same(r3.probesRemoved.map((p) => p.name), ['emu']);
  t.same(r3.schedulesStopped, ['*/10 * * * * (emu)']);
  t.same(scheduler.probes.map((p) => p.name), ['plain', 'ident']);
  t.same(scheduler.stalls(), { overdueSchedules: [], stuckProbes: [] });
});
