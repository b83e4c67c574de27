/**
 * Memory and start-up of the agent as the unit runs it (Node 24 runtime, dist/cli.js serve, the
 * V8 flags of scripts/node-flags.txt), beside prometheus-node-exporter measured in the same run,
 * and beside other V8 flag sets (the baseline: none). Prints a table; asserts nothing.
 *
 *   idle RSS                       after ready and a settle pause
 *   RSS after 10,000 scrapes       exactly 10,000 GET /metrics (autocannon, 50 connections)
 *   high-water mark under load     VmHWM after wrk at 50 connections
 *   start → serving                spawn to the first /healthz 200
 *   start → ready − probe round    spawn to /readyz 200, minus the first probe round's wall time
 *
 *   npx tsx bench/footprint.ts [--load-seconds 20] [--node PATH] [--flag-sets all|chosen]
 *   BENCH_SIZE=ci npx tsx bench/footprint.ts      (5 s of load; baseline and chosen flags only)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort, repoRoot, waitFor } from '../test/harness/agent.js';
import { readNodeFlags } from '../scripts/node-flags.js';

const ci = process.env.BENCH_SIZE === 'ci';
const { values } = parseArgs({
  options: {
    'load-seconds': { type: 'string', default: ci ? '5' : '20' },
    node: { type: 'string' },
    'flag-sets': { type: 'string', default: ci ? 'chosen' : 'all' },
  },
});
const loadSeconds = Number(values['load-seconds']);
const CONNECTIONS = 50;
const SCRAPES = 10_000;
const EXPORTER_SCRAPES = ci ? 1000 : 10_000;
const SETTLE_MS = ci ? 2000 : 5000;

const chosen = readNodeFlags();
/**
 * What runs: the tsc output (dist/) as today, and one esbuild bundle (chunks split at the
 * dynamic imports, so capabilities still load only when enabled), each under V8 flag sets. The
 * baseline is today's `node dist/cli.js serve`, without flags.
 */
interface Variant {
  label: string;
  entry: 'dist' | 'bundle';
  flags: string[];
}
const variants: Variant[] = [
  { label: 'dist, no flags (baseline)', entry: 'dist', flags: [] },
  { label: 'dist, chosen flags', entry: 'dist', flags: chosen },
  ...(values['flag-sets'] === 'all'
    ? [
        { label: 'bundle, no flags', entry: 'bundle' as const, flags: [] },
        { label: 'bundle, semi-space 1', entry: 'bundle' as const, flags: ['--max-semi-space-size=1'] },
        { label: 'bundle, semi-space 1, single-threaded', entry: 'bundle' as const, flags: ['--max-semi-space-size=1', '--single-threaded'] },
        { label: 'bundle, semi-space 1, lite-mode, old 64', entry: 'bundle' as const, flags: ['--max-semi-space-size=1', '--lite-mode', '--max-old-space-size=64'] },
      ]
    : []),
  { label: 'bundle, chosen flags', entry: 'bundle', flags: chosen },
];

/** esbuild (the one tsx brings) into .cache: ESM, minified, split at dynamic imports; the native sd_notify addon stays external. */
function buildBundle(): string {
  const out = path.join(repoRoot, '.cache/bench-footprint/bundle');
  rmSync(out, { recursive: true, force: true });
  execFileSync(
    path.join(repoRoot, 'node_modules/.bin/esbuild'),
    [
      'src/cli.ts',
      '--bundle',
      '--splitting',
      '--platform=node',
      '--format=esm',
      '--target=node22',
      '--minify',
      `--outdir=${out}`,
      '--external:unix-dgram',
      // Bundled CommonJS dependencies call require().
      "--banner:js=import{createRequire as __vtpmCreateRequire}from'node:module';const require=__vtpmCreateRequire(import.meta.url);",
      '--log-level=warning',
    ],
    { cwd: repoRoot, stdio: 'inherit' },
  );
  execFileSync(process.execPath, [path.join(repoRoot, 'scripts/build-info.mjs'), out], { stdio: 'inherit' });
  return path.join(out, 'cli.js');
}

function nodeBinary(): string {
  if (values.node) return values.node;
  // The runtime the packages bundle (Node 24, pinned in packaging/runtimes); installed into .cache
  // on first use. No fallback to the machine's Node: figures from another runtime would mislead.
  return execFileSync('bash', [path.join(repoRoot, 'scripts/node-runtime.sh'), '24'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 }).trim();
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function status(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

/** Polls every 5 ms: the figure is the start-up, not the polling interval. */
async function until(url: string, t0: number, timeoutMs = 180_000): Promise<number> {
  while (performance.now() - t0 < timeoutMs) {
    if ((await status(url)) === 200) return performance.now() - t0;
    await sleep(5);
  }
  throw new Error(`${url} not 200 within ${timeoutMs} ms`);
}

async function scrapes(url: string, amount: number, connections = CONNECTIONS): Promise<number> {
  const r = await autocannon({ url, connections, amount, timeout: 30 });
  return r.errors + r.non2xx;
}

function wrk(url: string, seconds: number): number {
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '10s', url], { encoding: 'utf8' });
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
}

interface Figures {
  idle: number;
  after10k: number;
  hwm: number;
  rssAfterLoad: number;
  rps: number;
  serving?: number;
  /** CPU time the process used until it served: start-up work without the wait for a busy CPU. */
  servingCpu?: number;
  ready?: number;
  round?: number;
  readyLessRound?: number;
  errors: number;
}

const children: ChildProcess[] = [];

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function measureAgent(node: string, flags: string[], entry: string): Promise<Figures> {
  const port = await freePort();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'vtpm-bench-footprint-'));
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = spawn(node, [...flags, entry, 'serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', `stateDir=${tmp}`, '--set', 'logLevel=info'], {
    cwd: repoRoot,
    env: { ...process.env, VTPM_AGENT_CONFIG: '/dev/null' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  // The agent logs how long its first probe round took.
  let round: number | undefined;
  let pending = '';
  child.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const m = /"durationSeconds":([\d.]+)[^\n]*first probe cycle complete/.exec(line);
      if (m) round = Number(m[1]) * 1000;
    }
  });
  try {
    const serving = await until(`${url}/healthz`, t0);
    const servingCpu = cpuMs(child.pid!);
    const ready = await until(`${url}/readyz`, t0);
    await waitFor('the first round duration in the log', () => round !== undefined, 10_000, 10);
    await sleep(SETTLE_MS);
    const idle = procStatus(child.pid!, 'VmRSS');
    const errors = await scrapes(`${url}/metrics`, SCRAPES);
    const after10k = procStatus(child.pid!, 'VmRSS');
    const rps = wrk(`${url}/metrics`, loadSeconds);
    const hwm = procStatus(child.pid!, 'VmHWM');
    const rssAfterLoad = procStatus(child.pid!, 'VmRSS');
    return { idle, after10k, hwm, rssAfterLoad, rps, serving, servingCpu, ready, round, readyLessRound: ready - round!, errors };
  } finally {
    await stopChild(child);
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function measureNodeExporter(): Promise<Figures> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/metrics`;
  const t0 = performance.now();
  const child = spawn('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${port}`, '--no-collector.systemd', '--log.level=error', '--web.max-requests=0'], { stdio: 'ignore' });
  children.push(child);
  try {
    const serving = await until(url, t0);
    const servingCpu = cpuMs(child.pid!);
    await sleep(SETTLE_MS);
    const idle = procStatus(child.pid!, 'VmRSS');
    // node_exporter collects on every scrape (tens of ms on a busy host): its fixed count runs on
    // fewer connections, and fewer of them in CI, or this step alone would take minutes.
    const errors = await scrapes(url, EXPORTER_SCRAPES, 10);
    const after10k = procStatus(child.pid!, 'VmRSS');
    const rps = wrk(url, loadSeconds);
    return { idle, after10k, hwm: procStatus(child.pid!, 'VmHWM'), rssAfterLoad: procStatus(child.pid!, 'VmRSS'), rps, serving, servingCpu, errors };
  } finally {
    await stopChild(child);
  }
}

try {
  const node = nodeBinary();
  const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  const entries = { dist: path.join(repoRoot, 'dist/cli.js'), bundle: buildBundle() };
  const exporter = await measureNodeExporter();
  const results: Array<[string, Figures]> = [];
  for (const v of variants) results.push([v.label, await measureAgent(node, v.flags, entries[v.entry])]);

  const fmt = (n: number | undefined, digits = 1) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
  const rowsSpec: Array<[string, (f: Figures) => string, string]> = [
    ['idle RSS (MiB)', (f) => fmt(f.idle), '<= 64'],
    [`RSS after ${SCRAPES.toLocaleString('en')} scrapes (node_exporter ${EXPORTER_SCRAPES.toLocaleString('en')}) (MiB)`, (f) => fmt(f.after10k), '<= 72'],
    [`high-water mark, ${CONNECTIONS} conns (MiB)`, (f) => fmt(f.hwm), '<= 96'],
    [`RSS after ${loadSeconds} s of load (MiB)`, (f) => fmt(f.rssAfterLoad), '-'],
    ['throughput under load (req/s)', (f) => fmt(f.rps, 0), '-'],
    ['start -> /healthz 200 (ms)', (f) => fmt(f.serving, 0), '-'],
    ['  CPU time used by then (ms)', (f) => fmt(f.servingCpu, 0), '-'],
    ['start -> /readyz 200 (ms)', (f) => fmt(f.ready, 0), '-'],
    ['  first probe round (ms)', (f) => fmt(f.round, 0), '-'],
    ['start -> ready, less the round (ms)', (f) => fmt(f.readyLessRound, 0), '<= 1000'],
    ['scrape errors', (f) => String(f.errors), '0'],
  ];
  const columns: Array<[string, Figures]> = [...results, ['node_exporter', exporter]];
  const header = ['', ...columns.map(([n]) => n), 'goal'];
  const table = [header, ...rowsSpec.map(([label, get, goal]) => [label, ...columns.map(([, f]) => get(f)), goal])];
  const chosenFigures = results[results.length - 1]![1];
  table.push(['idle RSS, agent / node_exporter', ...columns.map(([, f]) => `${(f.idle / exporter.idle).toFixed(1)}x`), '-']);
  const widths = header.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  console.log(`\nfootprint (${os.cpus().length} cores, load avg ${os.loadavg()[0]!.toFixed(1)}; agent on Node ${nodeVersion}; chosen flags (scripts/node-flags.txt): ${chosen.join(' ')}; load: autocannon for the fixed count, wrk for ${loadSeconds} s; not pinned)`);
  for (const [i, row] of table.entries()) {
    console.log(row.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join('  '));
    if (i === 0) console.log('-'.repeat(widths.reduce((a, b) => a + b + 2, 0)));
  }
  const goals: Array<[string, boolean]> = [
    ['idle RSS <= 64 MiB', chosenFigures.idle <= 64],
    ['RSS after 10k scrapes <= 72 MiB', chosenFigures.after10k <= 72],
    ['high-water mark <= 96 MiB', chosenFigures.hwm <= 96],
    ['start -> ready less the first round <= 1 s', (chosenFigures.readyLessRound ?? Infinity) <= 1000],
  ];
  console.log(`goals (bundle, chosen flags): ${goals.map(([g, ok]) => `${g}: ${ok ? 'met' : 'MISSED'}`).join('; ')}`);
} finally {
  for (const child of children) child.kill('SIGKILL');
}
