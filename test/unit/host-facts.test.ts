import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { configSchema } from '../../src/config/schema.js';
import { GUEST_INVENTORY, type GuestInventory } from '../../src/guests/types.js';
import { healthProbes } from '../../src/health/index.js';
import type { HealthProbeData } from '../../src/health/types.js';
import { HostFacts, hostFact } from '../../src/host/facts.js';
import type { Probe } from '../../src/probes/types.js';
import { ProbeScheduler } from '../../src/scheduler.js';
import { HostState } from '../../src/state.js';
import { hostPathResolver, type HostPathResolver } from '../../src/util/hostpath.js';
import { testStateFiles } from '../fixtures/state-files.js';

t.test('a fact is loaded once per memo, its failure shared, and a new memo loads again', async (t) => {
  const config = configSchema.parse({});
  let loads = 0;
  const FLAKY = hostFact<number>('flaky', async () => {
    loads += 1;
    throw new Error(`read ${loads} failed`);
  });
  let derivedLoads = 0;
  const COUNT = hostFact<number>('count', async () => ++loads);
  const DERIVED = hostFact<number>('derived', async (facts) => {
    derivedLoads += 1;
    return (await facts.get(COUNT)) * 10;
  });
  const round = new HostFacts({ config, hostPath: hostPathResolver('/') });
  await t.rejects(round.get(FLAKY), { message: 'read 1 failed' });
  await t.rejects(round.get(FLAKY), { message: 'read 1 failed' }, 'the second reader gets the same failure, not a new read');
  t.equal(loads, 1);
  t.equal(await round.get(DERIVED), 20, 'a fact may read another');
  t.equal(await round.get(COUNT), 2, 'and shares it with the round');
  t.equal(derivedLoads, 1);
  const next = new HostFacts({ config, hostPath: hostPathResolver('/') });
  await t.rejects(next.get(FLAKY), { message: 'read 3 failed' }, 'a new round reads again');
});

t.test('one /proc scan and one principal and nova.conf read per round across all health checks; the next round reads again', async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'vtpm-round-facts-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  // Two processes, none of them libvirt: the libvirt view is the host root, so every libvirt-side
  // read below goes through the one counted resolver.
  for (const [pid, comm] of [
    [1, 'init'],
    [4242, 'sleep'],
  ] as const) {
    put(`proc/${pid}/cmdline`, `${comm}\0`);
    put(`proc/${pid}/comm`, `${comm}\n`);
  }
  put('proc/locks', ''); // as on every kernel: no locks held
  put('etc/passwd', 'root:x:0:0::/root:/bin/sh\ntss:x:103:110::/:/bin/false\n');
  put('etc/group', 'root:x:0:\ntss:x:110:\n');
  put('etc/libvirt/qemu.conf', 'swtpm_user = "tss"\nswtpm_group = "tss"\n');
  put('etc/nova/nova.conf', '[libvirt]\nswtpm_enabled = true\n');
  put('etc/swtpm_setup.conf', 'create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = /etc/swtpm-localca.conf\n');
  put('etc/swtpm-localca.conf', 'statedir = /var/lib/swtpm-localca\n');
  const emptyPath = path.join(root, 'no-bin');
  mkdirSync(emptyPath);

  const config = configSchema.parse({ hostRoot: root, stateDir: path.join(root, 'state'), health: { timeoutSeconds: 10 } });
  const reads = new Map<string, number>();
  const base = hostPathResolver(root);
  const counting: HostPathResolver = (p) => {
    reads.set(p, (reads.get(p) ?? 0) + 1);
    return base(p);
  };
  // An empty inventory, so the per-guest checks run (without one they stop before reading the host).
  const inventory: Probe<GuestInventory> = {
    name: GUEST_INVENTORY,
    description: '',
    run: async () => ({ collectedAt: Date.now(), guests: [], domainsSeen: 0, errors: [], secrets: [], libvirtVersion: null, resumeGuestsStateOnHostBoot: null, atRisk: [] }),
  };
  const state = new HostState();
  const scheduler = new ProbeScheduler({
    probes: [inventory as Probe, ...healthProbes],
    config,
    log: pino({ level: 'silent' }),
    hostPath: counting,
    // Nothing to run: the checks that execute binaries find none and say so.
    env: { PATH: emptyPath },
    state,
    stateFiles: testStateFiles(),
    signal: new AbortController().signal,
  });
  t.equal(scheduler.probes.length, healthProbes.length + 1, 'every health probe is enabled by default');

  const scans = () => reads.get('/proc/4242/cmdline') ?? 0;
  const principalLoads = () => reads.get('/etc/libvirt/qemu.conf') ?? 0;
  const accountLoads = () => reads.get('/etc/passwd') ?? 0;
  const novaLoads = () => reads.get('/etc/nova/nova.conf') ?? 0;
  // Looked up twice a round: one read (SWTPM_LOCALCA, shared by the local-CA and container checks)
  // and the local-CA check's permission stat.
  const localCaConfLookups = () => reads.get('/etc/swtpm-localca.conf') ?? 0;

  await scheduler.runCycle();
  for (const p of healthProbes) t.equal(state.get(p.name)?.ok, true, `${p.name} ran`);
  const checks = healthProbes.flatMap((p) => (state.get(p.name)?.data as HealthProbeData | undefined)?.checks ?? []);
  const check = (id: string) => checks.find((c) => c.check === id);
  // The readers: binaries, container and orphans read the processes; principal, local CA and guest
  // state the principal; principal and nova the nova.conf settings.
  t.equal(check('orphans')?.status, 'pass', 'orphans saw the process list');
  t.notOk(check('localca')?.findings.some((f) => f.reason === 'VTPM_HEALTH_LOCALCA_PRINCIPAL_UNKNOWN'), 'the local CA check got the principal');
  t.equal(scans(), 1, 'one /proc scan in the round');
  t.equal(principalLoads(), 1, 'qemu.conf read once: one principal load');
  t.equal(accountLoads(), 1, 'passwd read once');
  t.equal(novaLoads(), 1, 'nova.conf read once');
  t.equal(localCaConfLookups(), 2, 'swtpm-localca.conf read once (and stat once) for the local-CA and container checks');

  await scheduler.runCycle();
  t.equal(scans(), 2, 'the next round scans /proc again');
  t.equal(principalLoads(), 2, 'and loads the principal again');
  t.equal(accountLoads(), 2);
  t.equal(novaLoads(), 2);
  t.equal(localCaConfLookups(), 4);
});
