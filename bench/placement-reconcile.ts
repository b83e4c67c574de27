/**
 * Placement reconciler benchmark against real Keystone and Placement (Debian packages).
 *
 * 1. Requests per reconcile cycle: cold start, steady state (goal: one GET, no write, no token),
 *    a verdict change (fence), and a baseline that opens a fresh session per cycle (what a cron
 *    job around the openstack CLI would do).
 * 2. Fleet: one process reconciling FLEET providers (default 500) against the one Placement, 10 %
 *    of them with a failing emulation check: total requests, time to converge, latency p50/p99.
 *
 * Run: npx tsx bench/placement-reconcile.ts [FLEET] [IN_FLIGHT]
 */
import os from 'node:os';
import pino from 'pino';
import { configSchema } from '../src/config/schema.js';
import { openSession } from '../src/openstack/index.js';
import type { OpenStackSession, RequestRecord } from '../src/openstack/session.js';
import { PlacementReconciler, type ReconcileResult } from '../src/placement/reconciler.js';
import { hostPathResolver } from '../src/util/hostpath.js';
import type { Verdict } from '../src/verdict.js';
import { startKeystone } from '../test/harness/keystone.js';
import { hostVerdict, startPlacement } from '../test/harness/placement.js';
import { fmt, quantile, table } from './table.js';

const FLEET = Number(process.argv[2] ?? 500);
/**
 * Reconciles in flight. Placement here is wsgiref (single-threaded, listen backlog 5): more than
 * ~4 concurrent connections overflow the backlog and SYN retransmits (1 s, 3 s, …) dominate.
 */
const CONCURRENCY = Number(process.argv[3] ?? 4);
const log = pino({ level: 'silent' });
const AGENT = { name: 'vtpm-agent', password: 'agent-pw', project: 'service', roles: ['admin'] };


/** What kind of request a record is, for counting. */
function kind(r: RequestRecord): string {
  if (r.service === 'identity') return 'token';
  if (r.method === 'PUT') return r.path.endsWith('/traits') && r.path.startsWith('/resource_providers') ? 'PUT traits' : 'PUT trait';
  return 'GET';
}

function open(env: Record<string, string>): OpenStackSession {
  const opened = openSession(configSchema.parse({}).openstack, { env, log });
  if (opened.state !== 'ready') throw new Error(opened.state);
  return opened.session;
}

const ks = await startKeystone({ users: [AGENT] });
const pl = await startPlacement(ks, { tokenCacheSeconds: 300 });
try {
  // ---- 1. requests per cycle ----
  const rp = await pl.createProvider('bench-host.example.org');
  await pl.setTraits(rp.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0', 'HW_CPU_X86_AVX']);
  const cfg = configSchema.parse({ placement: { computeIdPath: null, providerName: rp.name, mode: 'enforce' } });
  const session = open(ks.osEnv(AGENT));
  const records: RequestRecord[] = [];
  session.onRequest((r) => records.push(r));
  const rec = new PlacementReconciler({ session, config: cfg.placement, hostPath: hostPathResolver('/'), libvirtHostname: async () => null, log });

  const rows: Array<Array<string | number>> = [];
  const measure = async (label: string, run: () => Promise<ReconcileResult>, times = 1) => {
    const durations: number[] = [];
    let counts = { GET: 0, 'PUT traits': 0, 'PUT trait': 0, token: 0 } as Record<string, number>;
    let total = 0;
    for (let i = 0; i < times; i++) {
      const before = records.length;
      const r = await run();
      if (r.error) throw new Error(`${label}: ${r.error.message}`);
      durations.push(r.durationSeconds * 1000);
      const mine = records.slice(before);
      total += mine.length;
      for (const x of mine) counts[kind(x)] = (counts[kind(x)] ?? 0) + 1;
    }
    counts = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / times]));
    rows.push([label, times, fmt(total / times), fmt(counts.GET!), fmt(counts['PUT traits']! + counts['PUT trait']!), fmt(counts.token!), fmt(quantile(durations, 0.5))]);
  };
  const healthy = hostVerdict();
  const broken = hostVerdict({ failing: ['2.0'] });
  await measure('cold start (first pass)', () => rec.reconcile(healthy));
  await measure('steady state, nothing changed', () => rec.reconcile(healthy), 50);
  await measure('verdict changed: fence', () => rec.reconcile(broken));
  await measure('steady state while fenced', () => rec.reconcile(broken), 20);
  await measure('verdict changed: unfence', () => rec.reconcile(healthy));
  // Baseline: no state kept between cycles (fresh session, fresh caches) — a cron + CLI approach.
  await measure(
    'baseline: fresh session per cycle',
    async () => {
      const s = open(ks.osEnv(AGENT));
      s.onRequest((r) => records.push(r));
      const fresh = new PlacementReconciler({ session: s, config: cfg.placement, hostPath: hostPathResolver('/'), libvirtHostname: async () => null, log });
      try {
        return await fresh.reconcile(healthy);
      } finally {
        await s.close();
      }
    },
    5,
  );
  await session.close();
  console.log('\nRequests per reconcile cycle (real Keystone + Placement, keystonemiddleware token cache 300 s)\n');
  console.log(table(['cycle', 'runs', 'requests', 'GET', 'PUT', 'token', 'p50 ms'], rows));

  // ---- 2. fleet ----
  console.log(`\nFleet: creating ${FLEET} resource providers …`);
  const names = Array.from({ length: FLEET }, (_, i) => `fleet-${String(i).padStart(4, '0')}.example.org`);
  for (let i = 0; i < names.length; i += 8) {
    await Promise.all(
      names.slice(i, i + 8).map(async (name) => {
        const p = await pl.createProvider(name);
        await pl.setTraits(p.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
      }),
    );
  }
  const fleetSession = open(ks.osEnv(AGENT));
  const fleetRecords: RequestRecord[] = [];
  fleetSession.onRequest((r) => fleetRecords.push(r));
  const hosts = names.map((name, i) => ({
    name,
    verdict: (i % 10 === 0 ? broken : healthy) as Verdict,
    rec: new PlacementReconciler({
      session: fleetSession,
      config: configSchema.parse({ placement: { computeIdPath: null, providerName: name, mode: 'enforce' } }).placement,
      hostPath: hostPathResolver('/'),
      libvirtHostname: async () => null,
      log,
    }),
  }));
  const pass = async (label: string, concurrency = CONCURRENCY) => {
    const before = fleetRecords.length;
    const t0 = performance.now();
    const results: ReconcileResult[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < hosts.length) {
          const h = hosts[next++]!;
          results.push(await h.rec.reconcile(h.verdict));
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const mine = fleetRecords.slice(before);
    const lat = mine.map((r) => r.durationMs);
    const gets = mine.filter((r) => r.method === 'GET').map((r) => r.durationMs);
    const puts = mine.filter((r) => r.method === 'PUT').map((r) => r.durationMs);
    for (const r of results.filter((x) => x.error)) console.log(`  ${label}: ${r.provider?.name ?? '?'} failed: ${r.error!.message}`);
    return {
      label,
      concurrency,
      errors: results.filter((r) => r.error).length,
      fenced: results.filter((r) => r.traits?.includes('CUSTOM_VTPM_DEGRADED')).length,
      writes: results.filter((r) => r.wrote).length,
      conflicts: results.reduce((n, r) => n + r.conflicts, 0),
      requests: mine.length,
      tokens: mine.filter((r) => r.service === 'identity').length,
      seconds,
      rate: mine.length / seconds,
      p50: quantile(lat, 0.5),
      p99: quantile(lat, 0.99),
      getP99: quantile(gets, 0.99),
      putP99: quantile(puts, 0.99),
    };
  };
  const passes = [await pass('converge (cold)'), await pass('steady state'), await pass('steady state', 1)];
  console.log(`\nFleet of ${FLEET} providers (${FLEET / 10} with a failing TPM 2.0 check), one shared session; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}\n`);
  console.log(
    table(
      ['pass', 'in flight', 'requests', 'req/host', 'tokens', 'writes', 'fenced', 'errors', 'seconds', 'req/s', 'p50 ms', 'p99 ms', 'GET p99', 'PUT p99'],
      passes.map((p) => [
        p.label,
        p.concurrency,
        p.requests,
        fmt(p.requests / FLEET, 2),
        p.tokens,
        p.writes,
        p.fenced,
        p.errors,
        fmt(p.seconds),
        fmt(p.rate),
        fmt(p.p50),
        fmt(p.p99),
        fmt(p.getP99),
        fmt(p.putP99),
      ]),
    ),
  );
  console.log(
    `\nTime to converge (every provider read, every broken host fenced): ${fmt(passes[0]!.seconds)} s. ` +
      'Latency is client-side per HTTP request; with 1 in flight it is Placement\'s own service time, with more it includes queueing (Placement runs single-threaded wsgiref on sqlite).',
  );
  await fleetSession.close();
} finally {
  await pl.stop();
  await ks.stop();
}
