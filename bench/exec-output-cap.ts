/**
 * Memory of one child call answering 50 MB (issue 15: a 50 MB `virsh domcapabilities` took the
 * agent from 124 to 229 MiB). Each row runs in a fresh Node process and reports its peak RSS
 * (VmHWM) above the RSS just before the call: the baseline is the former runCommand (execa,
 * maxBuffer 64 MiB, the answer buffered whole as a string); the others are runCommand with the
 * per-call caps the agent uses, which kill the child at the cap.
 *
 *   npx tsx bench/exec-output-cap.ts [--mb 50] [--runs 3]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { runCommand } from '../src/util/exec.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : (process.argv[i + 1] ?? def);
};
const MiB = 1024 * 1024;

function vm(name: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1]) / 1024;
}

/** One measurement in this process: `--child <cap MiB | uncapped> <answer MB>`. */
async function child(mode: string, mb: number): Promise<void> {
  const producer = ['-c', `head -c ${mb * 1000 * 1000} /dev/zero | tr '\\000' x`];
  // Load execa and warm the spawn path first, so the figure is the answer's cost alone.
  await runCommand('true', [], { timeoutMs: 10_000, maxOutputBytes: 1024 });
  const before = vm('VmRSS');
  const t0 = performance.now();
  let outcome: string;
  if (mode === 'uncapped') {
    const r = await execa('sh', producer, { reject: false, timeout: 120_000, maxBuffer: 64 * MiB, stripFinalNewline: false });
    outcome = `buffered ${(String(r.stdout).length / MiB).toFixed(1)} MiB`;
  } else {
    outcome = await runCommand('sh', producer, { timeoutMs: 120_000, maxOutputBytes: Number(mode) * MiB }).then(
      () => 'completed',
      (err: { code?: string }) => String(err.code),
    );
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ before, peak: vm('VmHWM'), ms, outcome }));
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--child');
  if (at !== -1) return child(process.argv[at + 1]!, Number(process.argv[at + 2]));
  const mb = Number(arg('mb', '50'));
  const runs = Number(arg('runs', '3'));
  const self = fileURLToPath(import.meta.url);
  const modes = [
    ['uncapped', 'former runCommand (maxBuffer 64 MiB, whole answer)'],
    ['1', 'cap 1 MiB (domain capabilities)'],
    ['2', 'cap 2 MiB (inventory lists batch)'],
    ['8', 'cap 8 MiB (dumpxml batch of ~60 domains)'],
  ] as const;
  const rows: Array<{ label: string; growth: number; ms: number; outcome: string }> = [];
  for (const [mode, label] of modes) {
    const samples = [];
    for (let i = 0; i < runs; i++) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', mode, String(mb)], { encoding: 'utf8', maxBuffer: MiB });
      samples.push(JSON.parse(out.trim().split('\n').pop()!) as { before: number; peak: number; ms: number; outcome: string });
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    rows.push({ label, growth: median(samples.map((s) => s.peak - s.before)), ms: median(samples.map((s) => s.ms)), outcome: samples[0]!.outcome });
  }
  const base = rows[0]!.growth;
  console.log(`\nOne call answering ${mb} MB, median of ${runs} fresh processes each (peak RSS above the RSS before the call)\n`);
  console.log('| call | peak RSS growth | ratio to former | time to return | outcome |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.label} | ${r.growth.toFixed(1)} MiB | ${(r.growth / base).toFixed(2)}× | ${r.ms.toFixed(0)} ms | ${r.outcome} |`);
  }
}

await main();
