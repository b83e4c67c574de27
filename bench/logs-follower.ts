/**
 * nova-compute log follower benchmark.
 *  1. Throughput on a 1 GB nova-compute-like log (generated in a temp dir, deleted after),
 *     beside `grep -E` with the classifier's patterns (gate, restart marker, reason rules) on the
 *     same file in the same run.
 *  2. CPU used while following a log that grows at 10,000 lines/s (the writer is a separate
 *     process; process.cpuUsage over a fixed window measures the follower alone).
 * Usage: npx tsx bench/logs-follower.ts [--size-mb 1024] [--rate 10000] [--seconds 20]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { GREP_PATTERN_SOURCES } from '../src/logs/classify.js';
import { novaLogConfigSchema } from '../src/logs/config.js';
import { NovaLogFollower } from '../src/logs/follower.js';
import { hostPathResolver } from '../src/util/hostpath.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}
const SIZE_MB = arg('size-mb', 1024);
const RATE = arg('rate', 10_000);
const SECONDS = arg('seconds', 20);

/** A realistic mix: resource tracker, periodic tasks, DEBUG lock lines, some warnings, rare Barbican failures. */
function templates(): Array<(i: number) => string> {
  const req = () => `req-${randomUUID()}`;
  const inst = () => randomUUID();
  return [
    () => `INFO nova.compute.resource_tracker [None ${req()} - - - - - -] Final resource view: name=compute-01.example.org phys_ram=257000MB used_ram=4096MB phys_disk=900GB used_disk=40GB total_vcpus=64 used_vcpus=4 pci_stats=[]`,
    () => `DEBUG oslo_concurrency.lockutils [None ${req()} - - - - - -] Lock "compute_resources" acquired by "nova.compute.resource_tracker.ResourceTracker._update_available_resource" :: waited 0.000s inner /usr/lib/python3/dist-packages/oslo_concurrency/lockutils.py:404`,
    () => `DEBUG oslo_service.periodic_task [None ${req()} - - - - - -] Running periodic task ComputeManager._poll_rebooting_instances run_periodic_tasks /usr/lib/python3/dist-packages/oslo_service/periodic_task.py:210`,
    () => `INFO nova.compute.manager [None ${req()} - - - - - -] [instance: ${inst()}] VM Resumed (Lifecycle Event)`,
    () => `DEBUG nova.virt.libvirt.driver [None ${req()} - - - - - -] [instance: ${inst()}] Instance running successfully. _wait_for_boot /usr/lib/python3/dist-packages/nova/virt/libvirt/driver.py:4257`,
    () => `DEBUG oslo_service.service [None ${req()} - - - - - -] barbican.auth_endpoint = http://keystone.example/v3 log_opt_values /usr/lib/python3/dist-packages/oslo_config/cfg.py:2609`,
    () => `WARNING nova.compute.manager [None ${req()} - - - - - -] While synchronizing instance power states, found 3 instances in the database and 4 instances on the hypervisor.`,
  ];
}

const CRI_PREFIX = '2026-11-28T16:00:00.123456789Z stdout F ';

function stamp(ms: number): string {
  const d = new Date(ms).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 23)}`;
}

/** Writes `sizeMb` of log (CRI-wrapped with `cri`); returns the number of Barbican failure lines in it. */
function generate(file: string, sizeMb: number, cri = false): { lines: number; failures: number } {
  const wrap = cri ? (l: string) => `${CRI_PREFIX}${l}` : (l: string) => l;
  const fd = openSync(file, 'w');
  const t = templates();
  // Pre-render a pool so generation is fast; uniqueness of ids does not matter for throughput.
  const pool = Array.from({ length: 5000 }, (_, i) => t[i % t.length]!(i));
  let bytes = 0;
  let lines = 0;
  let failures = 0;
  let ms = Date.parse('2026-11-28T00:00:00Z');
  const target = sizeMb * 1024 * 1024;
  while (bytes < target) {
    let chunk = '';
    for (let k = 0; k < 20_000; k += 1) {
      ms += 3;
      lines += 1;
      if (lines % 50_000 === 0) {
        failures += 1;
        chunk += wrap(`${stamp(ms)} 4242 ERROR castellan.key_manager.barbican_key_manager [None req-${randomUUID()} - - - - - -] Error retrieving object: Forbidden: Secret payload retrieval attempt not allowed - please review your user/project privileges\n`);
        ms += 200_000; // beyond the incident window: each failure counts
      } else {
        chunk += wrap(`${stamp(ms)} 4242 ${pool[lines % pool.length]}\n`);
      }
    }
    bytes += writeSync(fd, chunk);
  }
  closeSync(fd);
  return { lines, failures };
}

async function followerPass(file: string, dir: string, criRoot?: string): Promise<{ seconds: number; cpuSeconds: number; failures: number }> {
  const config = criRoot
    ? novaLogConfigSchema.parse({ source: 'cri', startAt: 'beginning', pollIntervalSeconds: 60 })
    : novaLogConfigSchema.parse({ source: 'file', path: file, startAt: 'beginning', pollIntervalSeconds: 60 });
  const stateFile = path.join(dir, `state-${randomUUID()}.json`);
  const follower = new NovaLogFollower({ config, stateFile, hostPath: hostPathResolver(criRoot ?? '/'), log: pino({ level: 'silent' }) });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await follower.start(); // the first poll reads the whole file
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await follower.stop();
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, failures: follower.incidents.totals.forbidden };
}

function grepPass(file: string): { seconds: number; matches: number } {
  const t0 = performance.now();
  const r = spawnSync('grep', ['-c', '-E', ...GREP_PATTERN_SOURCES.flatMap((p) => ['-e', p]), file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' }, timeout: 600_000 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0 && r.status !== 1) throw new Error(`grep failed: ${r.stderr}`);
  return { seconds, matches: Number(r.stdout.trim()) };
}

/** A child that appends `rate` lines per second to `file` in 10 ms batches until killed. */
const WRITER_LINE = `2026-11-28 16:00:00.000 4242 INFO nova.compute.resource_tracker [None req-1b2c3d4e-aaaa-4bbb-8ccc-1234567890ab - - - - - -] Final resource view: name=compute-01.example.org phys_ram=257000MB used_ram=4096MB phys_disk=900GB used_disk=40GB total_vcpus=64 used_vcpus=4 pci_stats=[]`;

function startWriter(file: string, rate: number): ReturnType<typeof spawn> {
  const line = WRITER_LINE;
  const script = `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(file)},'a');const line=${JSON.stringify(`${line}\n`)};
let sent=0;const t0=Date.now();setInterval(()=>{const due=Math.floor((Date.now()-t0)*${rate}/1000)-sent;if(due>0){fs.writeSync(fd,line.repeat(due));sent+=due;}},10);`;
  return spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
}

async function followCpu(dir: string, rate: number, seconds: number): Promise<{ cpuPercent: number; linesPerSecond: number }> {
  const file = path.join(dir, 'growing.log');
  closeSync(openSync(file, 'w'));
  const config = novaLogConfigSchema.parse({ source: 'file', path: file, startAt: 'beginning', pollIntervalSeconds: 1 });
  const follower = new NovaLogFollower({ config, stateFile: path.join(dir, 'follow-state.json'), hostPath: hostPathResolver('/'), log: pino({ level: 'silent' }) });
  await follower.start();
  const writer = startWriter(file, rate);
  try {
    await new Promise((r) => setTimeout(r, 2000)); // warm-up
    const bytes0 = follower.stats.bytesRead;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wall = (performance.now() - t0) / 1000;
    const lineBytes = Buffer.byteLength(WRITER_LINE) + 1;
    return { cpuPercent: ((cpu.user + cpu.system) / 1e6 / wall) * 100, linesPerSecond: (follower.stats.bytesRead - bytes0) / lineBytes / wall };
  } finally {
    writer.kill('SIGKILL');
    await follower.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-bench-logs-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const file = path.join(dir, 'nova-compute.log');
    const g0 = performance.now();
    const gen = generate(file, SIZE_MB);
    const size = statSync(file).size;
    console.log(`generated ${(size / 1024 / 1024).toFixed(0)} MiB, ${gen.lines.toLocaleString()} lines, ${gen.failures} Barbican failures in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    // Warm the page cache for both contenders alike.
    grepPass(file);
    const rows: string[][] = [['run', 'tool', 'seconds', 'MiB/s', 'CPU s', 'found']];
    const mib = size / 1024 / 1024;
    const results: { grep: number[]; follower: number[] } = { grep: [], follower: [] };
    for (let run = 1; run <= 2; run += 1) {
      const g = grepPass(file);
      results.grep.push(mib / g.seconds);
      rows.push([String(run), 'grep -E (the classifier\'s patterns, LC_ALL=C)', g.seconds.toFixed(2), (mib / g.seconds).toFixed(0), '-', `${g.matches} lines`]);
      const f = await followerPass(file, dir);
      results.follower.push(mib / f.seconds);
      rows.push([String(run), 'vtpm-agent follower (file source)', f.seconds.toFixed(2), (mib / f.seconds).toFixed(0), f.cpuSeconds.toFixed(2), `${f.failures} failures`]);
    }
    rmSync(file);
    const best = (xs: number[]) => Math.max(...xs);
    console.log('\nThroughput on the same file, same run (page cache warm):');
    printTable(rows);
    console.log(`\nfollower / grep (best of 2): ${((best(results.follower) / best(results.grep)) * 100).toFixed(0)}%  (goal: at least 50%)`);

    // The CRI source (Atmosphere) on a quarter-size container log laid out as kubelet does.
    const criRoot = path.join(dir, 'host');
    const podDir = path.join(criRoot, 'var/log/pods/openstack_nova-compute-default-x7k2p_0f8e2d44/nova-compute');
    mkdirSync(podDir, { recursive: true });
    mkdirSync(path.join(criRoot, 'var/log/containers'), { recursive: true });
    const criFile = path.join(podDir, '0.log');
    symlinkSync('/var/log/pods/openstack_nova-compute-default-x7k2p_0f8e2d44/nova-compute/0.log', path.join(criRoot, `var/log/containers/nova-compute-default-x7k2p_openstack_nova-compute-${'a'.repeat(64)}.log`));
    const criGen = generate(criFile, Math.max(1, Math.round(SIZE_MB / 4)), true);
    const criMib = statSync(criFile).size / 1024 / 1024;
    grepPass(criFile);
    const cg = grepPass(criFile);
    const cf = await followerPass(criFile, dir, criRoot);
    rmSync(criRoot, { recursive: true, force: true });
    console.log(`\nCRI source, ${criMib.toFixed(0)} MiB, ${criGen.failures} failures:`);
    printTable([
      ['tool', 'seconds', 'MiB/s', 'CPU s', 'found'],
      ['grep -E (the classifier\'s patterns, LC_ALL=C)', cg.seconds.toFixed(2), (criMib / cg.seconds).toFixed(0), '-', `${cg.matches} lines`],
      ['vtpm-agent follower (CRI source)', cf.seconds.toFixed(2), (criMib / cf.seconds).toFixed(0), cf.cpuSeconds.toFixed(2), `${cf.failures} failures`],
    ]);
    console.log(`\nFollowing a log growing at ${RATE.toLocaleString()} lines/s for ${SECONDS} s (poll every 1 s):`);
    const c = await followCpu(dir, RATE, SECONDS);
    printTable([
      ['rate written', 'rate read', 'CPU (% of one core)', 'goal'],
      [`${RATE.toLocaleString()} lines/s`, `${Math.round(c.linesPerSecond).toLocaleString()} lines/s`, c.cpuPercent.toFixed(2), '< 5%'],
    ]);
  } finally {
    cleanup();
  }
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const [n, r] of rows.entries()) {
    console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    if (n === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

await main();
