/**
 * /metrics under load, beside prometheus-node-exporter measured in the same run on the same
 * machine: throughput and p50/p99 latency at 50 connections; agent RSS idle, after 10,000
 * scrapes and after the whole run; duration of one full probe cycle. Prints a table; asserts nothing.
 * With two cores or more, both servers run on CPU 0 and the load generator (this process) on
 * CPU 1, so the latency measured is the server's and not the load generator's competition.
 *
 *   npx tsx bench/metrics-http.ts [--duration 10] [--connections 50]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { freePort, repoRoot, waitFor } from '../test/harness/agent.js';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' } } });
const duration = Number(values.duration);
const connections = Number(values.connections);

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function load(url: string, opts: { duration?: number; amount?: number }) {
  const result = await autocannon({ url, connections, pipelining: 1, ...(opts.amount ? { amount: opts.amount } : { duration: opts.duration }) });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx, bytes: result.throughput.average };
}

async function ready(url: string): Promise<void> {
  await waitFor(url, async () => (await fetch(url, { signal: AbortSignal.timeout(5000) })).ok, 120_000, 250);
}

/** `taskset -c <cpu>` in front of a command when pinning is possible. */
const canPin = os.cpus().length >= 2 && (() => {
  try {
    execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const pinned = (cmd: string, args: string[]): [string, string[]] => (canPin ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args]);

const children: ChildProcess[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-bench-metrics-'));
try {
  const agentPort = await freePort();
  const t0 = performance.now();
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  // The same V8 flags as the systemd unit: a small young generation keeps RSS down.
  const agent = spawn(...pinned(process.execPath, ['--max-semi-space-size=1', path.join(repoRoot, 'dist/cli.js'), 'serve', '--set', `listen.port=${agentPort}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${tmp}`, '--set', 'logLevel=warn']), {
    env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' },
    stdio: 'ignore',
  });
  children.push(agent);
  const agentUrl = `http://127.0.0.1:${agentPort}`;
  await ready(`${agentUrl}/readyz`);
  const firstCycle = (performance.now() - t0) / 1000;
  const status = (await (await fetch(`${agentUrl}/status`)).json()) as { probes: Array<{ probe: string; durationSeconds: number }> };

  const exporterPort = await freePort();
  const exporter = spawn(...pinned('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${exporterPort}`, '--no-collector.systemd', '--log.level=error']), { stdio: 'ignore' });
  children.push(exporter);
  const exporterUrl = `http://127.0.0.1:${exporterPort}/metrics`;
  await ready(exporterUrl);

  const rssIdle = rssMiB(agent.pid!);
  const size = (await (await fetch(`${agentUrl}/metrics`)).text()).length;
  const exporterSize = (await (await fetch(exporterUrl)).text()).length;
  // fetch() would decompress; count the bytes on the wire.
  const gzipSize = await new Promise<number>((resolve, reject) => {
    httpGet(`${agentUrl}/metrics`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve(res.headers['content-encoding'] === 'gzip' ? bytes : -1));
    }).on('error', reject);
  });
  // The goal's own figure first: RSS after exactly 10,000 scrapes of a fresh agent.
  await load(`${agentUrl}/metrics`, { amount: 10_000 });
  const rss10k = rssMiB(agent.pid!);
  // Warm both up, then measure each for the same duration.
  await load(exporterUrl, { duration: 2 });
  const a = await load(`${agentUrl}/metrics`, { duration });
  const n = await load(exporterUrl, { duration });
  const rssAfter = rssMiB(agent.pid!);

  const rows: Array<[string, string, string]> = [
    ['metric', 'vtpm-agent', 'node_exporter'],
    ['/metrics body (bytes)', String(size), String(exporterSize)],
    ['/metrics body as Prometheus gets it, gzip (bytes)', String(gzipSize), '-'],
    [`throughput at ${connections} conns (req/s)`, a.rps.toFixed(0), n.rps.toFixed(0)],
    ['latency p50 (ms)', a.p50.toFixed(2), n.p50.toFixed(2)],
    ['latency p99 (ms)', a.p99.toFixed(2), n.p99.toFixed(2)],
    ['errors + non-2xx', String(a.errors), String(n.errors)],
    ['throughput ratio (agent / node_exporter)', `${(a.rps / n.rps).toFixed(1)}x`, '1.0x'],
    ['RSS idle (MiB)', rssIdle.toFixed(1), '-'],
    ['RSS after 10,000 scrapes (MiB)', rss10k.toFixed(1), '-'],
    [`RSS after ${10_000 + Math.round(a.rps * duration)} scrapes (MiB)`, rssAfter.toFixed(1), '-'],
    ['first probe cycle, start to ready (s)', firstCycle.toFixed(2), '-'],
    ...status.probes.map((p): [string, string, string] => [`  probe ${p.probe} (s)`, p.durationSeconds.toFixed(3), '-']),
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n/metrics benchmark (${duration} s per target, ${os.cpus().length} cores, Node ${process.version}; ${canPin ? 'servers pinned to CPU 0, load generator to CPU 1' : 'not pinned: servers and load generator share the CPUs'})`);
  for (const [i, r] of rows.entries()) {
    console.log(`${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2].padStart(13)}`);
    if (i === 0) console.log('-'.repeat(w0 + w1 + 17));
  }
  console.log('goals: p99 <= 5 ms at 50 connections; throughput >= 5x node_exporter; RSS <= 80 MB after 10,000 scrapes');
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
