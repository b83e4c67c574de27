/**
 * The agent under hostile HTTP clients (all on 127.0.0.1, bounded): RSS idle, peak during 2,000
 * slow clients then pipelined floods, and /healthz latency meanwhile, beside the same agent idle
 * (baseline row, same run). The stated bound: peak RSS within +96 MiB of idle (see the README
 * "Security" section); this prints it, asserts nothing.
 *
 *   npx tsx bench/http-hostile.ts [--slow 2000] [--flood-connections 20] [--flood-requests 100]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, repoRoot, spawnCli, waitFor } from '../test/harness/agent.js';
import { healthzProber, rssMiB, rssSampler } from '../test/harness/hostile-clients.js';

const { values } = parseArgs({ options: { slow: { type: 'string', default: '2000' }, 'flood-connections': { type: 'string', default: '20' }, 'flood-requests': { type: 'string', default: '100' } } });
const HEADERS_TIMEOUT_S = 5;
const dir = mkdtempSync(path.join(os.tmpdir(), 'vtpm-bench-hostile-'));
const port = await freePort();
const child = spawnCli(['serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${dir}/state`, '--set', 'emulation.enabled=false', '--set', `web.headersTimeoutSeconds=${HEADERS_TIMEOUT_S}`, '--log-level', 'warn'], { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' });
try {
  await waitFor('agent', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 90_000);
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? NaN;
  const idleProber = healthzProber(port, 100);
  const idleRss = rssSampler(child.pid!);
  await new Promise((r) => setTimeout(r, 3000));
  const idle = await idleProber.stop();
  const idlePeak = idleRss.stop();
  const baseline = rssMiB(child.pid!);
  const rss = rssSampler(child.pid!);
  const prober = healthzProber(port, 100);
  const script = path.join(repoRoot, 'test/harness/hostile-clients.ts');
  await new Promise((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', script, String(port), values.slow, '2000', String(2000 + HEADERS_TIMEOUT_S * 1000 + 2500), values['flood-connections'], values['flood-requests'], '5000'], { cwd: repoRoot, timeout: 120_000 }, (err, out) => (err ? reject(err) : resolve(out))),
  );
  const hostile = await prober.stop();
  const peak = rss.stop();
  const row = (name: string, s: typeof idle, rssPeak: number) => [name, String(s.latenciesMs.length), pct(s.latenciesMs, 50).toFixed(1), pct(s.latenciesMs, 99).toFixed(1), Math.max(...s.latenciesMs).toFixed(1), String(s.failures.length), rssPeak.toFixed(1), (rssPeak - baseline).toFixed(1)];
  const rows = [
    ['phase', '/healthz probes', 'p50 ms', 'p99 ms', 'max ms', 'failed or >1 s', 'peak RSS MiB', 'Δ vs idle MiB'],
    row('idle (baseline)', idle, idlePeak),
    row(`${values.slow} slow + flood ${values['flood-connections']}×${values['flood-requests']}`, hostile, peak),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(`bound: peak RSS ≤ idle + 96 MiB (web.maxConnections 256); headers timeout ${HEADERS_TIMEOUT_S} s`);
} finally {
  child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
