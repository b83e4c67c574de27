/**
 * /metrics under load, beside prometheus-node-exporter measured in the same run on the same
 * machine: throughput and p50/p99 latency at 50 connections; agent RSS idle, after 10,000
 * scrapes and after the whole run; duration of one full probe cycle. Prints a table; asserts nothing.
 * With two cores or more, both servers run on CPU 0 and the load generator (this process) on
 * CPU 1, so the latency measured is the server's and not the load generator's competition.
 *
 *   npx tsx bench/metrics-http.ts [--duration 10] [--connections 50] [--node-flags='--max-semi-space-size=1']
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
import { readNodeFlags } from '../scripts/node-flags.js';
import { bcryptHash, makePki, writeWebConfig } from '../test/harness/tls.js';
import { request as httpsRequest } from 'node:https';

// The packaged agent's V8 flags by default (scripts/node-flags.txt, chosen by bench/footprint.ts).
const { values } = parseArgs({
  options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' }, 'node-flags': { type: 'string', default: readNodeFlags().join(' ') } },
});
const nodeFlags = values['node-flags'].split(/\s+/).filter(Boolean);
const duration = Number(values.duration);
const connections = Number(values.connections);

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/**
 * wrk (C, one thread) when installed: it keeps up with the agent, so the latency is the server's.
 * autocannon (JavaScript) otherwise, and for fixed request counts.
 */
const haveWrk = (() => {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version.
    return (err as { status?: number }).status === 1;
  }
})();

/** `1.23ms`, `850.00us`, `1.01s` → milliseconds. */
function wrkMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function wrkLoad(url: string, seconds: number, headers: Record<string, string> = {}) {
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '10s', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url], { encoding: 'utf8' });
  const pct = (p: string) => wrkMs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN),
    p50: pct('50'),
    p99: pct('99'),
    errors: Number(errors ?? 0) + (socketErrors ? socketErrors.slice(1).reduce((s, x) => s + Number(x), 0) : 0),
  };
}

async function timedLoad(url: string, seconds: number, headers: Record<string, string> = {}) {
  return haveWrk ? wrkLoad(url, seconds, headers) : load(url, { duration: seconds, headers });
}

async function load(url: string, opts: { duration?: number; amount?: number; headers?: Record<string, string> }) {
  const result = await autocannon({ url, connections, pipelining: 1, headers: opts.headers, ...(opts.amount ? { amount: opts.amount } : { duration: opts.duration }) });
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
  const agent = spawn(...pinned(process.execPath, [...nodeFlags, path.join(repoRoot, 'dist/cli.js'), 'serve', '--set', `listen.port=${agentPort}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${tmp}`, '--set', 'logLevel=warn']), {
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
  await timedLoad(exporterUrl, 2);
  const cpu0 = cpuSeconds(agent.pid!);
  const a = await timedLoad(`${agentUrl}/metrics`, duration);
  // Below ~100 % the agent waited for requests: the load generator, not the agent, was the limit.
  const agentCpu = (cpuSeconds(agent.pid!) - cpu0) / duration;
  const n = await timedLoad(exporterUrl, duration);
  const rssAfter = rssMiB(agent.pid!);

  // The same agent build behind TLS + basic auth (a web config made here with openssl and
  // bcryptjs): kept-alive scrapes as Prometheus makes them, and the cost of a new connection.
  const pki = makePki('vtpm-bench-pki-');
  const cert = pki.issue('server', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
  const webConfig = writeWebConfig(path.join(tmp, 'web.yml'), { tls_server_config: { cert_file: cert.cert, key_file: cert.key }, basic_auth_users: { prometheus: bcryptHash('bench') } });
  const tlsPort = await freePort();
  const tlsAgent = spawn(...pinned(process.execPath, [...nodeFlags, path.join(repoRoot, 'dist/cli.js'), 'serve', '--web.config.file', webConfig, '--set', `listen.port=${tlsPort}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${tmp}/tls`, '--set', 'logLevel=warn']), {
    env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' },
    stdio: 'ignore',
  });
  children.push(tlsAgent);
  const ca = readFileSync(pki.caCert);
  const auth = { authorization: `Basic ${Buffer.from('prometheus:bench').toString('base64')}` };
  const scrapeOnce = (fresh: boolean, tls: boolean) =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const opts = { host: '127.0.0.1', path: '/metrics', agent: fresh ? false : undefined, headers: tls ? auth : {} };
      const done = (res: import('node:http').IncomingMessage) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - started));
      };
      (tls ? httpsRequest({ ...opts, port: tlsPort, ca }, done) : httpGet({ ...opts, port: agentPort }, done)).on('error', reject).end();
    });
  await waitFor('TLS agent', () => scrapeOnce(true, true).then(() => true), 120_000, 250);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const freshPlain: number[] = [];
  const freshTls: number[] = [];
  for (let i = 0; i < 200; i++) {
    freshPlain.push(await scrapeOnce(true, false));
    freshTls.push(await scrapeOnce(true, true));
  }
  // Node's https client and wrk both accept the test CA only through this switch; loopback only.
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  await timedLoad(`https://127.0.0.1:${tlsPort}/metrics`, 2, auth);
  const tlsCpu0 = cpuSeconds(tlsAgent.pid!);
  const s = await timedLoad(`https://127.0.0.1:${tlsPort}/metrics`, duration, auth);
  const tlsCpu = (cpuSeconds(tlsAgent.pid!) - tlsCpu0) / duration;
  pki.cleanup();

  const rows: Array<[string, string, string]> = [
    ['metric', 'vtpm-agent', 'node_exporter'],
    ['/metrics body (bytes)', String(size), String(exporterSize)],
    ['/metrics body as Prometheus gets it, gzip (bytes)', String(gzipSize), '-'],
    [`throughput at ${connections} conns (req/s)`, a.rps.toFixed(0), n.rps.toFixed(0)],
    ['agent CPU during the run (% of one core)', (agentCpu * 100).toFixed(0), '-'],
    ['latency p50 (ms)', a.p50.toFixed(2), n.p50.toFixed(2)],
    ['latency p99 (ms)', a.p99.toFixed(2), n.p99.toFixed(2)],
    ['errors + non-2xx', String(a.errors), String(n.errors)],
    ['throughput ratio (agent / node_exporter)', `${(a.rps / n.rps).toFixed(1)}x`, '1.0x'],
    [`TLS + basic auth: throughput at ${connections} conns (req/s)`, s.rps.toFixed(0), '-'],
    ['TLS + basic auth: latency p50 / p99 (ms)', `${s.p50.toFixed(2)} / ${s.p99.toFixed(2)}`, '-'],
    ['TLS + basic auth: errors + non-2xx', String(s.errors), '-'],
    ['TLS + basic auth: agent CPU (% of one core)', (tlsCpu * 100).toFixed(0), '-'],
    ['TLS / plain throughput ratio', `${(s.rps / a.rps).toFixed(2)}x`, '-'],
    ['new-connection scrape, median, plain / TLS (ms)', `${median(freshPlain).toFixed(2)} / ${median(freshTls).toFixed(2)}`, '-'],
    ['RSS idle (MiB)', rssIdle.toFixed(1), '-'],
    ['RSS after 10,000 scrapes (MiB)', rss10k.toFixed(1), '-'],
    [`RSS after ${10_000 + Math.round(a.rps * duration)} scrapes (MiB)`, rssAfter.toFixed(1), '-'],
    ['first probe cycle, start to ready (s)', firstCycle.toFixed(2), '-'],
    ...status.probes.map((p): [string, string, string] => [`  probe ${p.probe} (s)`, p.durationSeconds.toFixed(3), '-']),
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n/metrics benchmark (${duration} s per target, ${os.cpus().length} cores, Node ${process.version} ${nodeFlags.join(' ')}; ${canPin ? 'servers pinned to CPU 0, load generator to CPU 1' : 'not pinned: servers and load generator share the CPUs'}; load generator ${haveWrk ? 'wrk' : 'autocannon'})`);
  for (const [i, r] of rows.entries()) {
    console.log(`${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2].padStart(13)}`);
    if (i === 0) console.log('-'.repeat(w0 + w1 + 17));
  }
  console.log('goals: p99 <= 5 ms at 50 connections; throughput >= 5x node_exporter; RSS <= 80 MB after 10,000 scrapes');
} finally {
  // Wait for the agents to stop (they write state on the way out) before removing their dir.
  await Promise.all(children.map((child) => (child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))))));
  rmSync(tmp, { recursive: true, force: true });
}
