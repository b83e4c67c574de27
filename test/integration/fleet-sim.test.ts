/**
 * A simulated fleet on one machine: six real agent processes (`vtpm-agent serve`) with distinct
 * identities and verdicts, against the machine's real libvirtd/QEMU/swtpm and a real
 * Keystone + Placement, scraped by a real Prometheus loaded with the shipped rules (a copy whose
 * `for:` durations are cut to seconds). Two regions (target labels):
 *
 *   r1  healthy      everything works; the only one running the emulation checks
 *   r1  unusable     swtpm state dir missing: every configuration libvirt advertises is unusable
 *   r1  fenced       the same fault, Placement enforce mode: its provider carries CUSTOM_VTPM_DEGRADED
 *   r2  rebooted     a simulated host reboot strands a user-mode guest (its ephemeral secret is
 *                    gone): restart failure; another user-mode guest running is at risk
 *   r2  down         scraped, then killed
 *   r2  nolibvirt    libvirt unreachable: the libvirt probe keeps failing
 *
 * Asserts that every dashboard query and every recording rule parses and returns what this fleet
 * implies, that each alert fires for exactly the hosts whose state implies it, and that the
 * alerts resolve when the host is fixed (unusable, down, rebooted).
 */
import { type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { buildFleetDashboard, panelQueries, withAllSelected } from '../../scripts/grafana/dashboard.js';
import { freePort, repoRoot, spawnCli, waitFor } from '../harness/agent.js';
import { requireCommands, stopChild } from '../harness/components.js';
import { startKeystone } from '../harness/keystone.js';
import { cleanupGuests, defineGuest, defineSecret, guestName, PREFIX, testUuid, virsh, virshOk, waitForLibvirt } from '../harness/libvirt-guests.js';
import { startPlacement } from '../harness/placement.js';
import { startPrometheus, type PromAlert, type PrometheusServer } from '../harness/prometheus.js';

requireCommands('virsh', 'qemu-system-x86_64', 'swtpm', 'prometheus');

const work = mkdtempSync(path.join(tmpdir(), `${PREFIX}fleet-`));
const RULES_DIR = path.join(repoRoot, 'deploy/prometheus/rules');
const AGENT_USER = { name: 'vtpm-agent', password: 'agent-pw', project: 'service', roles: ['admin'] };

type Name = 'healthy' | 'unusable' | 'fenced' | 'rebooted' | 'down' | 'nolibvirt';
const REGION: Record<Name, string> = { healthy: 'r1', unusable: 'r1', fenced: 'r1', rebooted: 'r2', down: 'r2', nolibvirt: 'r2' };

interface FleetAgent {
  name: Name;
  port: number;
  instance: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  proc: ChildProcess | null;
}

/** Settings every agent shares: its own state dir and identity, no host-wide health checks. */
function baseArgs(name: Name, port: number): string[] {
  const set = (kv: string) => ['--set', kv];
  return [
    'serve',
    '--config', '/dev/null',
    ...set('listen.host=127.0.0.1'),
    ...set(`listen.port=${port}`),
    ...set(`stateDir=${path.join(work, name, 'state')}`),
    ...set(`identity.novaHost=${name}.compute.example.org`),
    ...set('identity.novaConfPath=""'),
    ...set('health.enabled=false'),
    ...set('emulation.enabled=false'),
    ...set('guests.inventoryEnabled=false'),
    ...set('guests.watcherEnabled=false'),
    ...set('barbican.enabled=false'),
    ...set('placement.enabled=false'),
    ...set('logLevel=info'),
  ];
}

async function startProcess(a: FleetAgent): Promise<void> {
  const log = createWriteStream(path.join(work, `${a.name}.log`), { flags: 'a' });
  const proc = spawnCli(a.args, a.env);
  proc.stdout?.pipe(log);
  proc.stderr?.pipe(log);
  a.proc = proc;
  // An agent that exits (bad configuration) fails the test at once rather than at the timeout.
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code) => reject(new Error(`${a.name} exited ${code}: ${readFileSync(path.join(work, `${a.name}.log`), 'utf8').slice(-2000)}`))),
  );
  exited.catch(() => undefined);
  await Promise.race([
    exited,
    waitFor(`${a.name} agent serving /metrics`, async () => (await fetch(`http://${a.instance}/metrics`, { signal: AbortSignal.timeout(3000) })).ok, 90_000, 300),
  ]);
}

async function stopProcess(a: FleetAgent): Promise<void> {
  const proc = a.proc;
  a.proc = null;
  if (proc) await stopChild(proc, 8000);
}

async function scrape(a: FleetAgent): Promise<string> {
  return (await fetch(`http://${a.instance}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

/** Samples of one family from an exposition: labels and value. */
function samples(text: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The shipped rule files, with every `for:` cut to 2 s and every group evaluated each second. */
function testRuleFiles(): string[] {
  const dir = path.join(work, 'rules');
  mkdirSync(dir, { recursive: true });
  return readdirSync(RULES_DIR)
    .filter((f) => f.endsWith('.rules.yml'))
    .map((f) => {
      const text = readFileSync(path.join(RULES_DIR, f), 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 2s').replace(/^(\s+)interval: \S+$/gm, '$1interval: 1s');
      writeFileSync(path.join(dir, f), text);
      return path.join(dir, f);
    });
}

const key = (labels: Record<string, string>, names: string[]) => names.map((n) => labels[n] ?? '').join('|');

t.teardown(async () => {
  await waitForLibvirt().catch(() => undefined);
  await cleanupGuests().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

t.test('a simulated fleet: dashboard queries, recording rules and alerts in a real Prometheus', async (t) => {
  await waitForLibvirt();
  await cleanupGuests();
  // Keystone and Placement start (the slowest part) while the guests and the other agents do.
  const openstack = (async () => {
    const ks = await startKeystone({ users: [AGENT_USER] });
    t.teardown(() => ks.stop());
    const pl = await startPlacement(ks);
    t.teardown(() => pl.stop());
    // Nova advertised TPM 1.2 and 2.0 on the fenced host's provider.
    const provider = await pl.createProvider('fenced.compute.example.org');
    await pl.setTraits(provider.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
    return { ks, pl, provider };
  })();
  openstack.catch(() => undefined); // awaited below; a failure there fails the test

  const agents = {} as Record<Name, FleetAgent>;
  for (const name of Object.keys(REGION) as Name[]) {
    const port = await freePort();
    agents[name] = { name, port, instance: `127.0.0.1:${port}`, args: baseArgs(name, port), env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' }, proc: null };
  }
  t.teardown(async () => {
    for (const a of Object.values(agents)) await stopProcess(a);
  });
  const all = Object.values(agents);

  // healthy: the emulation checks run (their durations feed the dashboard).
  agents.healthy.args.push('--set', 'emulation.enabled=true');
  // unusable and fenced: libvirt still advertises vTPM, but the swtpm state dir is missing.
  const missingStateDir = path.join(work, 'no-swtpm-state');
  agents.unusable.args.push('--set', `swtpm.stateDir=${missingStateDir}`);
  agents.fenced.args.push('--set', `swtpm.stateDir=${missingStateDir}`);
  // nolibvirt: a socket nobody listens on.
  agents.nolibvirt.args.push('--set', `libvirt.uri=qemu+unix:///system?socket=${path.join(work, 'no-libvirt.sock')}`, '--set', 'libvirt.timeoutSeconds=3');
  // rebooted: follows guests across a (simulated) reboot, inventories every 2 s.
  const bootId = path.join(work, 'boot_id');
  const novaConf = path.join(work, 'nova.conf');
  writeFileSync(bootId, 'aaaaaaaa-0000-4000-8000-00000000f1ee\n');
  writeFileSync(novaConf, '[DEFAULT]\nresume_guests_state_on_host_boot = true\n');
  agents.rebooted.args.push(
    '--set', 'guests.inventoryEnabled=true',
    '--set', 'guests.watcherEnabled=true',
    '--set', 'guests.inventorySchedule=*/2 * * * * *',
    '--set', `guests.bootIdPath=${bootId}`,
    '--set', `guests.novaConfPath=${novaConf}`,
    '--set', 'guests.snapshotIntervalSeconds=1',
    '--set', 'guests.resyncIntervalSeconds=1',
    '--set', `guests.swtpmLogDir=${path.join(work, 'swtpm-logs')}`,
  );

  // The guest that will be stranded: user mode, its key only in an ephemeral libvirt secret.
  const stranded = { name: guestName('stranded'), uuid: testUuid(), tpmVersion: '2.0' as const, model: 'tpm-crb' as const, secretUuid: testUuid(), nova: { instanceName: 'vm-stranded', project: 'demo', flavor: 'vtpm.user' } };
  const strandedKey = randomBytes(32);
  await defineGuest(stranded);
  await defineSecret({ uuid: stranded.secretUuid, instanceUuid: stranded.uuid, key: strandedKey, ephemeral: true });
  await virshOk(['start', stranded.name]);

  await Promise.all(all.filter((a) => a.name !== 'fenced').map((a) => startProcess(a)));
  // fenced: enforce mode against the real Placement.
  const { pl, ks, provider } = await openstack;
  agents.fenced.args.push('--set', 'placement.enabled=true', '--set', 'placement.mode=enforce', '--set', `placement.providerName=${provider.name}`, '--set', 'placement.computeIdPath=null');
  Object.assign(agents.fenced.env, ks.osEnv(AGENT_USER));
  const fencedStarted = startProcess(agents.fenced);
  fencedStarted.catch(() => undefined); // awaited below

  // The rebooted host before its reboot: wait for the snapshot with the guest, stop, "reboot".
  const snapshot = path.join(work, 'rebooted', 'state', 'guests', 'snapshot.json');
  await waitFor('snapshot with the stranded guest', () => {
    const snap = JSON.parse(readFileSync(snapshot, 'utf8')) as { guests: Array<{ uuid: string }> };
    return snap.guests.some((g) => g.uuid === stranded.uuid);
  });
  await stopProcess(agents.rebooted);
  await virshOk(['destroy', stranded.name]);
  await virshOk(['secret-undefine', stranded.secretUuid]);
  writeFileSync(bootId, 'bbbbbbbb-0000-4000-8000-00000000f1ee\n');
  await startProcess(agents.rebooted);
  const failedStart = await virsh(['start', stranded.name]);
  t.not(failedStart.code, 0, 'the stranded guest cannot start without its secret');
  // A second user-mode guest runs now: at risk on the next reboot.
  const atRisk = { name: guestName('at-risk'), uuid: testUuid(), tpmVersion: '2.0' as const, model: 'tpm-crb' as const, secretUuid: testUuid(), nova: { instanceName: 'vm-at-risk', project: 'demo', flavor: 'vtpm.user' } };
  await defineGuest(atRisk);
  await defineSecret({ uuid: atRisk.secretUuid, instanceUuid: atRisk.uuid, key: randomBytes(32), ephemeral: true });
  await virshOk(['start', atRisk.name]);

  await fencedStarted;
  // The fenced host's reconciler wrote the fencing trait into the real Placement.
  await waitFor('CUSTOM_VTPM_DEGRADED on the fenced provider', async () => (await pl.getTraits(provider.uuid)).traits.includes('CUSTOM_VTPM_DEGRADED'), 60_000, 500);

  const prom: PrometheusServer = await startPrometheus({
    targets: [],
    targetGroups: [
      { targets: all.filter((a) => REGION[a.name] === 'r1').map((a) => a.instance), labels: { region: 'r1' } },
      { targets: all.filter((a) => REGION[a.name] === 'r2').map((a) => a.instance), labels: { region: 'r2' } },
    ],
    ruleFiles: testRuleFiles(),
  });
  t.teardown(() => prom.stop());
  await waitFor('every agent scraped', async () => (await prom.query('up')).length === all.length && (await prom.query('up == 1')).length === all.length, 30_000, 500);
  // Then one agent goes down.
  await stopProcess(agents.down);

  const byInstance = new Map(all.map((a) => [a.instance, a.name]));
  const firing = async (): Promise<Map<string, Set<Name | ''>>> => {
    const out = new Map<string, Set<Name | ''>>();
    for (const alert of (await prom.alerts()).filter((x: PromAlert) => x.state === 'firing')) {
      const set = out.get(alert.labels.alertname!) ?? new Set();
      set.add(byInstance.get(alert.labels.instance ?? '') ?? '');
      out.set(alert.labels.alertname!, set);
    }
    return out;
  };
  const names = (s: Set<Name | ''> | undefined) => [...(s ?? [])].sort();

  // Facts each live agent reports about itself: the oracle for the fleet queries below.
  const expo = new Map<Name, string>();
  await waitFor('the rebooted agent reports the failed restart and the guest at risk', async () => {
    const m = await scrape(agents.rebooted);
    return samples(m, 'vtpm_guest_restart_failed').some((s) => s.labels.instance_uuid === stranded.uuid) && samples(m, 'vtpm_guests_at_risk').some((s) => s.labels.reason === 'user_secret_mode' && s.value >= 1);
  }, 60_000, 500);
  const expected = {
    'VtpmCapabilityAdvertisedUnusable': ['fenced', 'unusable'],
    'VtpmPlacementAdvertisesUnusableTpm': ['fenced'],
    'VtpmProbeFailing': ['nolibvirt'],
    'VtpmGuestRestartFailed': ['rebooted'],
    'VtpmGuestsAtRiskOnReboot': ['rebooted'],
    'VtpmGuestWatcherDown': ['down'],
  } as const;
  const alerts = await waitFor('every expected alert firing', async () => {
    const f = await firing();
    return Object.entries(expected).every(([alert, hosts]) => names(f.get(alert)).join() === [...hosts].sort().join()) ? f : undefined;
  }, 60_000, 1000).catch(async (err: Error) => {
    t.fail(`${err.message}; firing: ${JSON.stringify([...(await firing())].map(([k, v]) => [k, [...v]]))}`);
    return firing();
  });
  for (const [alert, hosts] of Object.entries(expected)) t.same(names(alerts.get(alert)), [...hosts].sort(), `${alert} fires for exactly ${hosts.join(', ')}`);
  for (const quiet of ['VtpmCapabilityLost', 'VtpmGuestWatcherAbsent', 'VtpmPlacementReconcileFailing', 'VtpmGuestRestartPendingPastDeadline']) {
    t.same(names(alerts.get(quiet)), [], `${quiet} does not fire in this fleet`);
  }
  const strandedAlert = (await prom.alerts()).find((a) => a.labels.alertname === 'VtpmGuestRestartFailed' && a.labels.instance_uuid === stranded.uuid);
  t.equal(strandedAlert?.labels.reason, 'secret_missing', 'the restart failure names the missing secret');
  t.equal(strandedAlert?.labels.region, 'r2', 'target labels (region) reach the alert');

  for (const a of all.filter((x) => x.proc)) expo.set(a.name, await scrape(a));
  const live = [...expo.keys()];

  await t.test('every recording rule parses and returns what the fleet implies', async (t) => {
    const rules = readdirSync(RULES_DIR)
      .filter((f) => f.endsWith('.rules.yml'))
      .flatMap((f) => (parse(readFileSync(path.join(RULES_DIR, f), 'utf8')) as { groups: Array<{ rules: Array<{ record?: string; expr: string }> }> }).groups)
      .flatMap((g) => g.rules)
      .filter((r) => r.record);
    for (const r of rules) {
      const direct = await prom.query(r.expr);
      t.ok(Array.isArray(direct), `${r.record}: its expression runs`);
    }
    const q = async (expr: string) => new Map((await prom.query(expr)).map((s) => [key(s.metric, ['region', 'version', 'model', 'reason', 'outcome', 'result']), Number(s.value[1])]));
    // Advertised: the configurations each live agent's libvirt offers (every agent with libvirt shares one).
    const advertised = new Map<string, number>();
    const usable = new Map<string, number>();
    for (const name of live) {
      const m = expo.get(name)!;
      const traits = new Set(samples(m, 'vtpm_expected_nova_trait').filter((s) => s.value === 1).map((s) => s.labels.trait));
      for (const s of samples(m, 'vtpm_capability_usable')) {
        const k = key({ region: REGION[name], version: s.labels.version!, model: s.labels.model! }, ['region', 'version', 'model', 'reason', 'outcome', 'result']);
        const vTrait = `COMPUTE_SECURITY_TPM_${s.labels.version!.replace('.', '_')}`;
        const mTrait = `COMPUTE_SECURITY_TPM_${s.labels.model!.replace('tpm-', '').toUpperCase()}`;
        if (traits.has(vTrait) && traits.has(mTrait)) advertised.set(k, (advertised.get(k) ?? 0) + 1);
        if (s.value === 1) usable.set(k, (usable.get(k) ?? 0) + 1);
      }
    }
    t.ok(advertised.size > 0, `libvirt advertises vTPM here: ${[...advertised.keys()].join(', ')}`);
    t.same(await q('version_model:vtpm_hosts_advertised:count'), advertised, 'hosts advertised per region and configuration');
    t.same(await q('version_model:vtpm_hosts_usable:count'), usable, 'hosts usable per region and configuration');
    for (const broken of ['unusable', 'fenced', 'nolibvirt'] as const) {
      t.ok(samples(expo.get(broken)!, 'vtpm_capability_usable').every((s) => s.value === 0), `${broken}: no configuration usable`);
    }
    t.ok(usable.size > 0, 'the healthy hosts count as usable');
    const fencedPerConfig = new Map([...advertised.keys()].filter((k) => k.startsWith('r1|')).map((k) => [k, 1]));
    t.same(await q('version_model:vtpm_hosts_fenced:count'), fencedPerConfig, 'the fenced host, for every configuration it advertises');
    t.same(await q('region:vtpm_hosts_fenced:count'), new Map([['r1|||||', 1]]));
    t.same(await q('region:vtpm_hosts_drifting:count'), new Map([['r1|||||', 1]]), 'only the host with Placement credentials can drift');
    t.same(await q('region:vtpm_agents_down:count'), new Map([['r2|||||', 1]]));
    t.same(await q('region:vtpm_agents_up:count'), new Map([['r1|||||', 3], ['r2|||||', 2]]));
    // The rebooted host's guest counts: other suites may start or stop guests on this shared
    // libvirtd meanwhile, so compare a fresh scrape with the recorded series until both agree.
    const settled = async (what: string, expr: string, truth: (m: string) => Map<string, number>) => {
      let last = { got: new Map<string, number>(), want: new Map<string, number>() };
      await waitFor(what, async () => {
        const want = truth(await scrape(agents.rebooted));
        await new Promise((r) => setTimeout(r, 2500)); // a scrape and an evaluation later
        const got = await q(expr);
        last = { got, want: truth(await scrape(agents.rebooted)) };
        return JSON.stringify([...got].sort()) === JSON.stringify([...want].sort()) && JSON.stringify([...last.want].sort()) === JSON.stringify([...want].sort());
      }, 20_000, 0).catch(() => undefined);
      t.same(last.got, last.want, what);
      return last.want;
    };
    const riskTruth = await settled('guests at risk per reason (the one agent with an inventory)', 'reason:vtpm_guests_at_risk:sum', (m) => new Map(samples(m, 'vtpm_guests_at_risk').map((s) => [`r2|||${s.labels.reason}||`, s.value])));
    t.ok((riskTruth.get('r2|||user_secret_mode||') ?? 0) >= 1, 'our running user-mode guest is at risk');
    const outcomes = await settled('restart outcomes since the reboot', 'outcome:vtpm_guest_restarts:sum', (m) => new Map(samples(m, 'vtpm_guest_restarts_total').map((s) => [`r2||||${s.labels.outcome}|`, s.value])));
    t.ok((outcomes.get('r2||||failed|') ?? 0) >= 1, 'at least our stranded guest failed');
    await settled('guests still down after the reboot, per reason', 'reason:vtpm_guest_restart_failed:count', (m) => {
      const out = new Map<string, number>();
      for (const s of samples(m, 'vtpm_guest_restart_failed')) out.set(`r2|||${s.labels.reason}||`, (out.get(`r2|||${s.labels.reason}||`) ?? 0) + 1);
      return out;
    });
    t.same(await q('result:vtpm_barbican_preflight_guests:sum'), new Map(), 'no Barbican preflight runs in this fleet: no series');
    t.same(await q('count({__name__=~".+:vtpm_.+:.+", instance_uuid!=""}) or vector(0)'), new Map([['|||||', 0]]), 'no recorded series per guest');
  });

  await t.test('every dashboard query parses and returns what the fleet implies', async (t) => {
    const queries = panelQueries(buildFleetDashboard());
    const results = new Map<string, Array<{ metric: Record<string, string>; value: [number, string] }>>();
    for (const pq of queries) {
      const res = await prom.query(withAllSelected(pq.expr)).catch((err: Error) => err);
      t.notOk(res instanceof Error, `${pq.panel} / ${pq.refId} runs: ${res instanceof Error ? res.message : ''}`);
      if (!(res instanceof Error)) results.set(`${pq.panel}/${pq.refId}`, res);
    }
    const instances = (id: string, filter: (m: Record<string, string>) => boolean = () => true) =>
      (results.get(id) ?? []).filter((s) => filter(s.metric)).map((s) => byInstance.get(s.metric.instance ?? '') ?? s.metric.instance).sort();
    const value = (id: string) => Number(results.get(id)?.[0]?.value[1]);
    t.equal(results.get('Hosts per TPM configuration/B')?.length, new Set([...(await prom.query('version_model:vtpm_hosts_advertised:count'))].map((s) => `${s.metric.version} ${s.metric.model}`)).size, 'one bar per advertised configuration');
    t.equal(value('Hosts drifting from Placement/A'), 1);
    t.equal(value('Fenced hosts/A'), 1);
    t.equal(value('Agents down/A'), 1);
    t.same(instances('Hosts needing attention/A'), ['fenced'], 'drift');
    t.same(instances('Hosts needing attention/B'), ['fenced'], 'fenced');
    t.same(instances('Hosts needing attention/C'), ['down'], 'down');
    t.same(instances('Hosts needing attention/D'), ['fenced', 'unusable'], 'advertised but unusable');
    t.ok((results.get('Probes failing/A') ?? []).some((s) => s.metric.probe === 'libvirt'), 'the libvirt probe is failing somewhere');
    t.same(instances('Hosts with guests at risk/A', (m) => m.reason === 'user_secret_mode'), ['rebooted']);
    t.same([...new Set(instances('Restart outcomes per host/A'))], ['rebooted'], 'restart outcomes come from the host that rebooted');
    t.ok((results.get('Restart outcomes per host/B') ?? []).length >= 1, 'boot times');
    t.same(instances('Guests still down after a reboot/A', (m) => m.reason === 'secret_missing'), ['rebooted']);
    t.ok((results.get('Restart outcomes in the fleet/A') ?? []).some((s) => s.metric.outcome === 'failed' && Number(s.value[1]) >= 1));
    t.equal(results.get('vTPM guests by Barbican access result/A')?.length, 0, 'no Barbican in this fleet');
    const emu = results.get('Emulation check duration/A') ?? [];
    t.ok(emu.length > 0 && emu.every((s) => byInstance.get(s.metric.instance ?? '') === 'healthy' && Number(s.value[1]) > 0), 'emulation durations from the one host that runs the checks');
    const hostVar = await prom.query('group by (instance) (up{job=~".*vtpm-agent.*",region=~"r2"})');
    t.same(hostVar.map((s) => byInstance.get(s.metric.instance!)).sort(), ['down', 'nolibvirt', 'rebooted'], 'the host variable follows the region variable');
  });

  await t.test('alerts resolve when their hosts are fixed', async (t) => {
    // unusable: restarted without the fault; down: back; rebooted: Nova re-creates the secret and starts the guest.
    await stopProcess(agents.unusable);
    agents.unusable.args = agents.unusable.args.filter((x, i, arr) => !(x.startsWith('swtpm.stateDir=') || (x === '--set' && arr[i + 1]?.startsWith('swtpm.stateDir='))));
    await startProcess(agents.unusable);
    await startProcess(agents.down);
    await defineSecret({ uuid: stranded.secretUuid, instanceUuid: stranded.uuid, key: strandedKey, ephemeral: true });
    await virshOk(['start', stranded.name]);
    const after = await waitFor('the fixed hosts’ alerts resolved', async () => {
      const f = await firing();
      const stillRestart = (await prom.alerts()).some((a) => a.labels.alertname === 'VtpmGuestRestartFailed' && a.labels.instance_uuid === stranded.uuid);
      return !names(f.get('VtpmCapabilityAdvertisedUnusable')).includes('unusable') && !names(f.get('VtpmGuestWatcherDown')).includes('down') && !stillRestart ? f : undefined;
    }, 60_000, 1000);
    t.same(names(after.get('VtpmCapabilityAdvertisedUnusable')), ['fenced'], 'the fenced host, still broken, keeps its alert');
    t.same(names(after.get('VtpmProbeFailing')), ['nolibvirt']);
    t.same(names(after.get('VtpmGuestWatcherDown')), []);
    t.same(names(after.get('VtpmGuestsAtRiskOnReboot')), ['rebooted'], 'guests at risk stay at risk');
  });
});
