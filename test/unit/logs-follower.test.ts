import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { configSchema } from '../../src/config/schema.js';
import { NovaLogFollower } from '../../src/logs/follower.js';
import { hostPathResolver } from '../../src/util/hostpath.js';

function failureLine(n = 0, at = new Date()): string {
  const now = at.toISOString();
  return `${now.slice(0, 10)} ${now.slice(11, 23)} ${4242 + n} ERROR castellan.key_manager.barbican_key_manager [None req-0000000${n}-1111-4222-8333-444444444444 - - - - - -] Error retrieving object: Forbidden: Secret payload retrieval attempt not allowed\n`;
}

/** Two failures a day apart: far outside the incident window, so reading them again would count them again. */
function twoFailures(): string {
  return failureLine(2, new Date(Date.now() - 86400_000)) + failureLine(3);
}

function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-follower-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logFile = path.join(dir, 'nova-compute.log');
  const stateFile = path.join(dir, 'state', 'nova-log.json');
  mkdirSync(path.dirname(stateFile));
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void warnings.push(JSON.parse(s).msg as string) });
  const follower = (startAt: 'end' | 'beginning' = 'beginning') =>
    new NovaLogFollower({
      config: configSchema.parse({ novaLog: { source: 'file', path: logFile, startAt, pollIntervalSeconds: 60 } }).novaLog,
      stateFile,
      hostPath: hostPathResolver('/'),
      log,
      saveIntervalMs: 0,
    });
  return { dir, logFile, stateFile, warnings, follower };
}

t.test('a corrupt state file is moved aside with a warning, then a fresh one is saved', async (t) => {
  const { logFile, stateFile, warnings, follower } = setup(t);
  appendFileSync(logFile, failureLine());
  writeFileSync(stateFile, '{"version":1,"incidents":');
  const f = follower();
  await f.start();
  await f.stop();
  const aside = readdirSync(path.dirname(stateFile)).filter((n) => n.startsWith('nova-log.json.corrupt-'));
  t.equal(aside.length, 1, 'moved aside');
  t.equal(readFileSync(path.join(path.dirname(stateFile), aside[0]!), 'utf8'), '{"version":1,"incidents":', 'the corrupt content is kept for recovery');
  t.ok(warnings.some((w) => /nova-log\.json is not JSON; set aside as .*nova-log\.json\.corrupt-/.test(w)), 'one warning naming the file and its copy');
  t.ok(existsSync(stateFile), 'a new state file was saved');
  t.equal(f.stats.stateProblem, null);
});

t.test('an unreadable state file is left alone, never saved over, and reported', async (t) => {
  const { logFile, stateFile, warnings, follower } = setup(t);
  appendFileSync(logFile, failureLine());
  // A symlink loop: reading fails with ELOOP, while an atomic rename would replace the link.
  symlinkSync(path.basename(stateFile), stateFile);
  const f = follower();
  await f.start();
  t.equal(f.incidents.totals.forbidden, 1, 'still counting');
  await f.stop();
  t.ok(lstatSync(stateFile).isSymbolicLink(), 'the state file was not saved over');
  t.match(f.stats.stateProblem, /cannot read .*nova-log\.json \(ELOOP\); it is left as it is and not saved over; Barbican failure counts/);
  t.ok(warnings.some((w) => /cannot read .*ELOOP/.test(w)));
  t.equal(readdirSync(path.dirname(stateFile)).filter((n) => n.includes('corrupt')).length, 0, 'not moved aside either');
});

t.test('a state file readable again: its counts are added to those since start and saved, nothing lost', async (t) => {
  const { logFile, stateFile, follower } = setup(t);
  // An earlier run counted one failure and saved it.
  appendFileSync(logFile, failureLine(1, new Date(Date.now() - 86400_000)));
  const first = follower();
  await first.start();
  await first.stop();
  const saved = readFileSync(stateFile, 'utf8');
  t.equal(JSON.parse(saved).incidents.totals.forbidden, 1);
  // The file becomes unreadable; this run counts a new failure in a fresh log.
  rmSync(stateFile);
  symlinkSync(path.basename(stateFile), stateFile);
  writeFileSync(logFile, failureLine(4));
  const f = follower();
  await f.start();
  t.match(f.stats.stateProblem, /ELOOP/);
  t.equal(f.incidents.totals.forbidden, 1, 'counting meanwhile');
  // The operator repairs it: the earlier counts come back.
  rmSync(stateFile);
  writeFileSync(stateFile, saved);
  await f.stop();
  t.equal(f.stats.stateProblem, null, 'the problem is cleared');
  t.equal(f.incidents.totals.forbidden, 2, 'the saved failure and the one since start');
  t.equal(JSON.parse(readFileSync(stateFile, 'utf8')).incidents.totals.forbidden, 2, 'and the sum is saved');
});

t.test('invalid saved positions are dropped to startAt: the counts stay, nothing is counted twice', async (t) => {
  const { logFile, stateFile, warnings, follower } = setup(t);
  appendFileSync(logFile, twoFailures());
  const firstRun = follower('beginning');
  await firstRun.start();
  await firstRun.stop();
  t.equal(firstRun.incidents.totals.forbidden, 2);
  const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
  for (const bad of [{ current: 'garbage', previous: null }, { current: { dev: 1, ino: -4, offset: 'x', head: 'zz' }, previous: null }]) {
    writeFileSync(stateFile, JSON.stringify({ ...saved, file: bad }));
    const again = follower('end');
    await again.start();
    await again.stop();
    t.equal(again.incidents.totals.forbidden, 2, `the saved count is kept and the log is not re-read from 0 (${JSON.stringify(bad)})`);
  }
  t.ok(warnings.some((w) => /invalid saved nova-compute log positions dropped/.test(w)));
  // A valid position still resumes where it was: a new line counts once.
  appendFileSync(logFile, failureLine(1));
  const resumed = follower('end');
  await resumed.start();
  await resumed.stop();
  t.equal(resumed.incidents.totals.forbidden, 3);
});

function journalFollower(t: { teardown(fn: () => unknown): void }, backoff: { minMs: number; maxMs: number; resetAfterMs: number }) {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-follower-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: { level: number; msg: string; retryInMs?: number }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const f = new NovaLogFollower({
    config: configSchema.parse({ novaLog: { source: 'journald', journalctlPath: path.join(dir, 'no-such-journalctl'), journalDirectory: dir } }).novaLog,
    stateFile: path.join(dir, 'nova-log.json'),
    hostPath: hostPathResolver('/'),
    log,
    journalBackoff: { ...backoff, random: () => 1 },
  });
  t.teardown(() => f.stop());
  const warnings = () => lines.filter((l) => l.level === 40 && /journalctl ended/.test(l.msg));
  const restarts = () => lines.filter((l) => /journalctl ended/.test(l.msg));
  return { f, warnings, restarts };
}

t.test('a missing journalctl is restarted with exponential backoff, one warning per step', async (t) => {
  const { f, warnings, restarts } = journalFollower(t, { minMs: 20, maxMs: 160, resetAfterMs: 60_000 });
  await f.start();
  await new Promise((r) => setTimeout(r, 1200));
  await f.stop();
  // Delays 20, 40, 80, 160, 160, …: a handful of restarts in 1.2 s, not one every 20 ms.
  const n = restarts().length;
  t.ok(n >= 6 && n <= 12, `${n} restarts`);
  t.same(restarts().slice(0, 5).map((l) => l.retryInMs), [20, 40, 80, 160, 160], 'doubling up to the cap (jitter at its top)');
  t.equal(warnings().length, 4, 'one warning per backoff step, then quiet at the cap');
  t.match(f.stats.lastError?.message, /journalctl exited/);
});

t.test('a child that lived long enough resets the backoff', async (t) => {
  const { f, restarts } = journalFollower(t, { minMs: 20, maxMs: 160, resetAfterMs: 0 });
  await f.start();
  await new Promise((r) => setTimeout(r, 300));
  await f.stop();
  t.ok(restarts().length >= 3);
  t.ok(restarts().every((l) => l.retryInMs === 20), 'every restart starts from the first step');
});

t.test('CRI: an invalid saved position starts that log at startAt, not from 0', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-follower-cri-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'containers'));
  mkdirSync(path.join(dir, 'pod', 'nova-compute'), { recursive: true });
  const target = path.join(dir, 'pod', 'nova-compute', '0.log');
  for (const line of twoFailures().trimEnd().split('\n')) appendFileSync(target, `${new Date().toISOString()} stdout F ${line}\n`);
  symlinkSync(target, path.join(dir, 'containers', `nova-compute-x_openstack_nova-compute-${'a'.repeat(64)}.log`));
  const stateFile = path.join(dir, 'nova-log.json');
  const follower = (startAt: 'end' | 'beginning') =>
    new NovaLogFollower({
      config: configSchema.parse({ novaLog: { source: 'cri', glob: path.join(dir, 'containers', 'nova-compute-*.log'), container: 'nova-compute', startAt, pollIntervalSeconds: 60 } }).novaLog,
      stateFile,
      hostPath: hostPathResolver('/'),
      log: pino({ level: 'silent' }),
      saveIntervalMs: 0,
    });
  const first = follower('beginning');
  await first.start();
  await first.stop();
  t.equal(first.incidents.totals.forbidden, 2);
  const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
  t.same(Object.keys(saved.cri), [target]);
  writeFileSync(stateFile, JSON.stringify({ ...saved, cri: { [target]: { current: { ino: 'x' } } } }));
  const again = follower('end');
  await again.start();
  await again.stop();
  t.equal(again.incidents.totals.forbidden, 2, 'not counted twice');
});
