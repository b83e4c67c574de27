/**
 * Emulation check timings: median and p95 over N runs of the basic check (TPM 2.0 and 1.2) and
 * the state check, beside the baseline libvirt runs before a new guest's first start:
 * `swtpm_setup --tpm2 --createek` on a fresh state directory (private temp dir, no certificates,
 * so the system local CA in /var/lib/swtpm-localca is never touched), measured in the same run
 * and as the same user. Figures only; nothing here asserts on time.
 *   npx tsx bench/swtpm-emulation.ts [--runs 20]
 */
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { basicTpm12, basicTpm2, runAsPrincipal, stateTpm2, type CheckEnvironment, type EmulationCheckResult } from '../src/swtpm/index.js';
import { readAccounts } from '../src/host/accounts.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;
const log = pino({ level: 'silent' });
const principal = await runAsPrincipal('auto', { user: 'tss', group: 'tss' }, await readAccounts('/etc/passwd', '/etc/group'));
const base = await mkdtemp(path.join(os.tmpdir(), 'vtpm-bench-'));
await chown(base, 0, 0);
await import('node:fs/promises').then((fs) => fs.chmod(base, 0o755));

const env: CheckEnvironment = {
  swtpmPath: 'swtpm',
  principal,
  tempBase: base,
  env: process.env,
  signal: new AbortController().signal,
  timeoutMs: 30_000,
  log,
};

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

async function measure(name: string, fn: () => Promise<void>): Promise<{ name: string; ms: number[] }> {
  await fn(); // warm-up: page cache, first exec of the binaries
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return { name, ms: ms.sort((a, b) => a - b) };
}

const check = (run: (e: CheckEnvironment) => Promise<EmulationCheckResult>) => async () => {
  const r = await run(env);
  if (!r.ok) throw new Error(`${r.version} ${r.level} failed at ${r.failedStep}: ${r.message}`);
};

async function swtpmSetupCreateEk(): Promise<void> {
  const dir = await mkdtemp(path.join(base, 'setup-'));
  try {
    if (principal) await chown(dir, principal.uid, principal.gid);
    await execa('swtpm_setup', ['--tpm2', '--tpmstate', dir, '--createek', '--logfile', path.join(dir, 'setup.log')], {
      timeout: 60_000,
      ...(principal ? { uid: principal.uid, gid: principal.gid } : {}),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const LOCALCA = '/var/lib/swtpm-localca';
async function localCaSnapshot(): Promise<string> {
  const fs = await import('node:fs/promises');
  const names = await fs.readdir(LOCALCA).catch(() => [] as string[]);
  const stats = await Promise.all(names.map(async (n) => `${n}:${(await fs.stat(path.join(LOCALCA, n)).catch(() => null))?.mtimeMs ?? '-'}`));
  return stats.sort().join(',');
}

try {
  const caBefore = await localCaSnapshot();
  const rows = [
    await measure('basic TPM 2.0', check(basicTpm2)),
    await measure('basic TPM 1.2', check(basicTpm12)),
    await measure('state TPM 2.0', check(stateTpm2)),
    await measure('swtpm_setup --tpm2 --createek (baseline)', swtpmSetupCreateEk),
  ];
  const baseline = quantile(rows[3]!.ms, 0.5);
  const goals: Record<string, string> = {
    'basic TPM 2.0': 'median <= 80 ms, >= 8x faster than baseline',
    'basic TPM 1.2': 'median <= 350 ms',
    'state TPM 2.0': '-',
  };
  const fmt = (n: number) => n.toFixed(1);
  const header = ['check', 'runs', 'median ms', 'p95 ms', 'min ms', 'max ms', 'baseline / median', 'goal'];
  const table = rows.map((r) => {
    const median = quantile(r.ms, 0.5);
    return [r.name, String(r.ms.length), fmt(median), fmt(quantile(r.ms, 0.95)), fmt(r.ms[0]!), fmt(r.ms[r.ms.length - 1]!), `${(baseline / median).toFixed(1)}x`, goals[r.name] ?? ''];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`swtpm emulation checks, ${RUNS} runs each, as ${principal ? `${principal.user}:${principal.group}` : 'self'}, ${os.cpus().length} CPU(s), node ${process.version}`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  // Others (libvirt guests) may legitimately use the CA meanwhile; this says whether anything changed.
  console.log(`${LOCALCA} unchanged during the run: ${(await localCaSnapshot()) === caBefore ? 'yes' : 'no (changed by someone; the bench passes no certificate options)'}`);
} finally {
  await rm(base, { recursive: true, force: true });
}
