/**
 * SIGTERM mid-check: a real agent-like child process runs the emulation probe, gets SIGTERM while
 * swtpm is running, and must leave no swtpm process and no directory behind.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { processesMentioning } from '../../src/swtpm/procscan.js';
import { requireCommands } from '../harness/components.js';
import { fake, FAKE_DIR, leftovers, tempBase } from '../fixtures/fake-swtpm/helpers.js';

requireCommands('swtpm', 'node');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT = path.join(FAKE_DIR, 'sigterm-agent.ts');
interface Tap {
  teardown(fn: () => unknown): void;
}

async function until<T>(what: string, fn: () => Promise<T | null>, limitMs = 30_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function scenario(t: Tap, swtpmPath: string, exitMode: 'graceful' | 'immediate', runAs: string) {
  const base = await tempBase(t);
  const child = spawn(process.execPath, ['--import', 'tsx', AGENT, base, swtpmPath, exitMode, runAs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    // Only on failure is there anything here; never leave it to the next test.
    for (const p of await processesMentioning(`${base}/`)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  // Mid-check: an swtpm (real or fake) started by the child is running in the child's temp dir.
  const running = await until('an swtpm in the workspace', async () => {
    const procs = (await processesMentioning(`${base}/`)).filter((p) => p.argv.includes('socket'));
    return procs.length ? procs : null;
  });
  child.kill('SIGTERM');
  const exit = await exited;

  // SIGKILL delivery is asynchronous: give the kernel a moment, bounded.
  const left = await until('the workspace to be empty', async () => {
    const l = await leftovers(base);
    return l.processes.length === 0 && l.entries.length === 0 ? l : null;
  }, 5000).catch(async () => leftovers(base));
  return { stdout, stderr, exit, running, left };
}

t.test('graceful shutdown while a hanging swtpm is being waited for', async (t) => {
  const { stdout, stderr, exit, running, left } = await scenario(t, fake('hang'), 'graceful', 'self');
  t.ok(running.length >= 1, 'a (fake) swtpm was running when SIGTERM came');
  t.same(exit, { code: 0, signal: null }, `agent exited cleanly (stderr: ${stderr.slice(0, 500)})`);
  t.same(left, { processes: [], entries: [] }, 'no swtpm process and no directory left');
  const line = stdout.trim().split('\n').pop()!;
  const report = JSON.parse(line) as { inFlight: boolean; result: { ok: boolean; data?: { checks: Array<{ failedStep: string; message: string }> } } };
  t.equal(report.inFlight, true, 'SIGTERM arrived mid-round');
  const first = report.result.data?.checks[0];
  t.equal(first?.failedStep, 'spawn');
  t.match(first?.message, /shutting down/);
});

t.test('an agent that exits on SIGTERM without aborting still kills swtpm (run as the swtpm user) and removes the dir', async (t) => {
  const { stderr, exit, running, left } = await scenario(t, fake('hang'), 'immediate', 'auto');
  t.ok(running.length >= 1, 'a (fake) swtpm was running when SIGTERM came');
  t.same(exit, { code: 0, signal: null }, `agent exited (stderr: ${stderr.slice(0, 500)})`);
  t.same(left, { processes: [], entries: [] }, 'no swtpm process and no directory left');
});

t.test('SIGTERM during real swtpm checks', async (t) => {
  const { stderr, exit, running, left } = await scenario(t, 'swtpm', 'graceful', 'auto');
  t.ok(running.length >= 1, 'a real swtpm was running when SIGTERM came');
  t.same(exit, { code: 0, signal: null }, `agent exited cleanly (stderr: ${stderr.slice(0, 500)})`);
  t.same(left, { processes: [], entries: [] }, 'no swtpm process and no directory left');
});

t.test('SIGKILL mid-check: the next start removes the orphaned swtpm and the temp directory', async (t) => {
  const base = await tempBase(t);
  const start = () => {
    const child = spawn(process.execPath, ['--import', 'tsx', AGENT, base, 'swtpm', 'graceful', 'auto'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    return { child, exited };
  };
  t.teardown(async () => {
    for (const p of await processesMentioning(`${base}/`)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const first = start();
  const killedDir = `vtpm-agent-emu-${first.child.pid}-`;
  await until('a real swtpm in the first agent\'s workspace', async () => {
    const procs = (await processesMentioning(`${base}/${killedDir}`)).filter((p) => p.argv.includes('socket'));
    return procs.length ? procs : null;
  });
  first.child.kill('SIGKILL');
  t.same(await first.exited, { code: null, signal: 'SIGKILL' });
  const left = await leftovers(base);
  t.ok(left.entries.some((e) => e.startsWith(killedDir)), 'SIGKILL leaves the temp directory (no handler runs)');

  // The next agent's first emulation round sweeps what the dead one left (its pid is gone).
  const second = start();
  const swept = await until('the dead agent\'s leftovers to be gone', async () => {
    const now = await leftovers(base);
    const mine = now.entries.filter((e) => e.startsWith(killedDir));
    const procs = now.processes.filter((p) => p.includes(killedDir));
    return mine.length === 0 && procs.length === 0 ? now : null;
  }, 60_000);
  t.ok(swept, 'no swtpm process and no directory of the killed agent left after the next start');
  second.child.kill('SIGTERM');
  t.same(await second.exited, { code: 0, signal: null });
  t.same(await leftovers(base), { processes: [], entries: [] }, 'and the next agent leaves nothing behind itself');
});
