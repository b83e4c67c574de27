/**
 * Splay benchmark: N agents' Placement reconcile loops (the real PlacementReconcilerExtension,
 * one OpenStack session each, distinct host identities) on the same wall-clock schedule against
 * one real Placement (and Keystone), without and with splay. Requests per second are counted on
 * the server side, from Placement's own access log (one line per request, 1-s resolution).
 *
 * Run: npx tsx bench/splay.ts [--agents N] [--interval SECONDS] [--intervals K]
 */
import { setMaxListeners } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { configSchema } from '../src/config/schema.js';
import { PlacementReconcilerExtension } from '../src/placement/extension.js';
import type { ReconcileResult } from '../src/placement/reconciler.js';
import { HostState } from '../src/state.js';
import { hostPathResolver } from '../src/util/hostpath.js';
import { startKeystone } from '../test/harness/keystone.js';
import { hostVerdict, startPlacement } from '../test/harness/placement.js';
import { fmt, quantile, table } from './table.js';
import { contextTools } from '../test/fixtures/state-files.js';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '200' }, interval: { type: 'string', default: '30' }, intervals: { type: 'string', default: '2' } } });
const AGENTS = Number(values.agents);
const INTERVAL = Number(values.interval);
const INTERVALS = Number(values.intervals);
if (![AGENTS, INTERVAL, INTERVALS].every((n) => Number.isInteger(n) && n > 0) || INTERVAL > 59 || 60 % INTERVAL !== 0) {
  console.error('--agents, --interval (a divisor of 60 s) and --intervals must be positive integers');
  process.exit(64);
}
const log = pino({ level: 'silent' });
const AGENT = { name: 'vtpm-agent', password: 'agent-pw', project: 'service', roles: ['admin'] };

/** wsgiref's access lines: `127.0.0.1 - - [04/Dec/2026 14:10:24] "GET /… HTTP/1.1" 200 15`. */
function requestsPerSecond(logFile: string, from: number, to: number): Map<string, number> {
  const text = readFileSync(logFile).subarray(from, to).toString('utf8');
  const perSecond = new Map<string, number>();
  for (const m of text.matchAll(/\[(\d\d\/\w{3}\/\d{4} \d\d:\d\d:\d\d)\] "(GET|PUT|POST|DELETE)/g)) perSecond.set(m[1]!, (perSecond.get(m[1]!) ?? 0) + 1);
  return perSecond;
}

const started = Date.now();
const phase = (what: string) => console.log(`[${fmt((Date.now() - started) / 1000, 0)} s] ${what}`);
const ks = await startKeystone({ users: [AGENT] });
const pl = await startPlacement(ks, { tokenCacheSeconds: 300 });
const accessLog = path.join(pl.dir, 'wsgi.log');
try {
  phase(`Keystone and Placement up; creating ${AGENTS} resource providers`);
  const names = Array.from({ length: AGENTS }, (_, i) => `splay-${String(i).padStart(4, '0')}.example.org`);
  for (let i = 0; i < names.length; i += 4) {
    await Promise.all(
      names.slice(i, i + 4).map(async (name) => {
        const p = await pl.createProvider(name);
        await pl.setTraits(p.uuid, ['COMPUTE_SECURITY_TPM_1_2', 'COMPUTE_SECURITY_TPM_2_0']);
      }),
    );
  }
  const verdict = hostVerdict();
  const env = ks.osEnv(AGENT);
  const rows: Array<Array<string | number>> = [];
  const peaks: number[] = [];
  for (const splay of [0, INTERVAL]) {
    phase(`${splay ? `splay ${splay} s` : 'no splay'}: starting ${AGENTS} reconcile loops`);
    const controller = new AbortController();
    setMaxListeners(0, controller.signal); // one stop signal shared by every loop
    const durations: number[] = [];
    let errors = 0;
    let measuring = false;
    const extensions = names.map((name) => {
      const config = configSchema.parse({
        splay,
        identity: { providerName: name },
        placement: { computeIdPath: null, providerName: name, mode: 'observe', schedule: `*/${INTERVAL} * * * * *` },
      });
      const ext = new PlacementReconcilerExtension({ verdict: () => verdict, libvirtHostname: async () => name });
      ext.onResult = (r: ReconcileResult) => {
        if (!measuring) return;
        durations.push(r.durationSeconds * 1000);
        if (r.error) errors += 1;
      };
      return { ext, config };
    });
    // Each agent's first pass runs at its start (not splayed; it also fetches a token). Start them
    // a few at a time: wsgiref's listen backlog is 5, more at once only measures SYN retransmits.
    for (let i = 0; i < extensions.length; i += 4) {
      await Promise.all(
        extensions.slice(i, i + 4).map(async ({ ext, config }) => {
          await ext.start({ config, log, hostPath: hostPathResolver('/'), env, state: new HostState(), ...contextTools('placement'), signal: controller.signal });
          await ext.idle(); // start() only triggers the first pass
        }),
      );
    }
    await Promise.all(extensions.map(({ ext }) => ext.idle()));
    const offsets = extensions.map(({ ext }) => ext.splayOffsetMs);
    // Measure whole intervals, starting on a tick.
    await new Promise((r) => setTimeout(r, INTERVAL * 1000 - (Date.now() % (INTERVAL * 1000)) - 200));
    phase(`measuring ${INTERVALS} × ${INTERVAL} s`);
    const from = statSync(accessLog).size;
    measuring = true;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, INTERVALS * INTERVAL * 1000));
    const seconds = (Date.now() - t0) / 1000;
    measuring = false;
    const to = statSync(accessLog).size;
    controller.abort();
    await Promise.all(extensions.map(({ ext }) => ext.stop()));
    const perSecond = requestsPerSecond(accessLog, from, to);
    const counts = [...perSecond.values()];
    const total = counts.reduce((a, b) => a + b, 0);
    const peak = Math.max(0, ...counts);
    peaks.push(peak);
    rows.push([
      splay ? `splay ${splay} s` : 'no splay (0)',
      AGENTS,
      `${INTERVAL} s`,
      fmt(seconds, 0),
      total,
      peak,
      fmt(total / seconds),
      perSecond.size,
      `${fmt(Math.min(...offsets) / 1000)}–${fmt(Math.max(...offsets) / 1000)}`,
      durations.length,
      errors,
      fmt(quantile(durations, 0.5)),
      fmt(quantile(durations, 0.99)),
    ]);
  }
  console.log(
    `\nSplay: ${AGENTS} Placement reconcile loops (real extension, one session each, distinct host identities) on */${INTERVAL} s against one Placement (wsgiref, sqlite); load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}\n`,
  );
  console.log(
    table(['mode', 'agents', 'interval', 'window s', 'requests', 'peak req/s', 'mean req/s', 'busy seconds', 'offsets s', 'passes', 'errors', 'pass p50 ms', 'pass p99 ms'], rows),
  );
  console.log(
    `\nPeak requests per second at Placement: ${peaks[0]} without splay, ${peaks[1]} with splay (${fmt(peaks[0]! / Math.max(1, peaks[1]!), 1)}× lower). ` +
      'Counted from Placement\'s access log; "busy seconds" are the seconds in the window with at least one request; a pass is one reconcile (steady state: one GET).',
  );
} finally {
  await pl.stop();
  await ks.stop();
}
