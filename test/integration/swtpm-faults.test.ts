/**
 * Faults no real swtpm produces on demand, injected with small fake binaries: each gives a
 * failed check naming the right step and reason, and leaves no process or directory behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { HostFacts } from '../../src/host/facts.js';
import { runProbe } from '../../src/probes/runner.js';
import { emulationProbe } from '../../src/probes/emulation.js';
import { emulationOutcomes } from '../../src/libvirt/emulation-outcomes.js';
import type { EmulationData } from '../../src/swtpm/index.js';
import { hostPathResolver } from '../../src/util/hostpath.js';
import { computeVerdict } from '../../src/verdict.js';
import { requireCommands } from '../harness/components.js';
import { config, fake, leftovers, round, silent, tempBase } from '../fixtures/fake-swtpm/helpers.js';
import { testStateFiles } from '../fixtures/state-files.js';

requireCommands('swtpm', 'node');

const ALL = [
  ['1.2', 'basic'],
  ['2.0', 'basic'],
  ['2.0', 'state'],
];

const cases: Array<{ mode: string; timeoutSeconds: number; step: string; code: string; message: RegExp; rc?: Record<string, string> }> = [
  { mode: 'exit', timeoutSeconds: 10, step: 'spawn', code: 'VTPM_ERR_SWTPM_START', message: /exited with code 1 before opening its sockets; swtpm said: fake swtpm: Error: Could not initialize libtpms/ },
  { mode: 'hang', timeoutSeconds: 1, step: 'spawn', code: 'VTPM_ERR_SWTPM_START', message: /did not open its sockets within the time limit/ },
  { mode: 'garbage', timeoutSeconds: 10, step: 'startup', code: 'VTPM_ERR_TPM_PROTOCOL', message: /TPM2?_Startup: response announces an impossible size/ },
  { mode: 'tpm-error', timeoutSeconds: 10, step: 'startup', code: 'VTPM_ERR_TPM_RESPONSE', message: /Startup returned TPM_(RC_)?FAIL/, rc: { '1.2': 'TPM_FAIL', '2.0': 'TPM_RC_FAILURE' } },
  // Depending on timing the data connection is refused or reset; either way the error says swtpm died.
  { mode: 'die-after-init', timeoutSeconds: 10, step: 'startup', code: 'VTPM_ERR_SWTPM_START', message: /swtpm exited with code 4 (before the data channel connected|during TPM2?_Startup)/ },
  { mode: 'crash', timeoutSeconds: 10, step: 'startup', code: 'VTPM_ERR_SWTPM_START', message: /swtpm exited with code 3 during TPM2?_Startup \(.*(connection closed by swtpm|ECONNRESET)/ },
];

for (const c of cases) {
  t.test(`swtpm that fails with '${c.mode}': failed at '${c.step}', nothing left`, async (t) => {
    const base = await tempBase(t);
    const data = await round(config({ swtpmPath: fake(c.mode), tempDir: base, runAs: 'self', timeoutSeconds: c.timeoutSeconds }));
    t.same(data.checks.map((x) => [x.version, x.level]), ALL);
    for (const check of data.checks) {
      const label = `${check.version} ${check.level}`;
      t.equal(check.ok, false, label);
      t.equal(check.failedStep, c.step, label);
      t.equal(check.errorCode, c.code, label);
      t.match(check.message, c.message, label);
      if (c.rc) {
        t.equal(check.rcName, c.rc[check.version], label);
        t.equal(check.rc, check.version === '2.0' ? 0x101 : 0x09, label);
      }
    }
    t.same(await leftovers(base), { processes: [], entries: [] });
  });
}

t.test('a hanging swtpm started as the swtpm user is killed too', async (t) => {
  const base = await tempBase(t);
  const data = await round(config({ swtpmPath: fake('hang'), tempDir: base, timeoutSeconds: 0.5, versions: ['2.0'], levels: ['basic'] }));
  t.equal(data.runAs.user, 'tss');
  t.equal(data.checks[0]?.failedStep, 'spawn');
  t.same(await leftovers(base), { processes: [], entries: [] });
});

t.test('a missing swtpm', async (t) => {
  const base = await tempBase(t);
  const data = await round(config({ swtpmPath: path.join(base, 'no-such-swtpm'), tempDir: base, versions: ['2.0'], levels: ['basic'] }));
  t.match(data.checks[0], { ok: false, failedStep: 'spawn', errorCode: 'VTPM_ERR_EXEC_NOT_FOUND', message: /no-such-swtpm not found/ });
  t.same(await leftovers(base), { processes: [], entries: [] });
});

t.test('an unusable temp dir fails at the workspace step, and nothing is created or left', async (t) => {
  const data = await round(config({ tempDir: '/nonexistent-vtpm-agent-dir', versions: ['2.0'], levels: ['basic'] }));
  t.match(data.checks[0], { ok: false, failedStep: 'workspace', errorCode: 'VTPM_ERR_SWTPM_START', message: /cannot create a private directory under \/nonexistent-vtpm-agent-dir/ });
  t.notOk(existsSync('/nonexistent-vtpm-agent-dir'), 'the missing parent is not created');
  // A file where the directory should be: refused the same way, the file untouched.
  const base = await tempBase(t);
  const notADir = path.join(base, 'not-a-dir');
  await writeFile(notADir, 'x');
  const onFile = await round(config({ tempDir: notADir, versions: ['2.0'], levels: ['basic'] }));
  t.match(onFile.checks[0], { ok: false, failedStep: 'workspace', errorCode: 'VTPM_ERR_SWTPM_START' });
  t.equal(await readFile(notADir, 'utf8'), 'x');
  t.same(await leftovers(base), { processes: [], entries: ['not-a-dir'] }, 'no swtpm process and nothing but the file');
});

t.test('a PATH whose swtpm exits 1 turns the verdict to not usable, naming the step', async (t) => {
  const base = await tempBase(t);
  const bin = await mkdtemp(path.join(os.tmpdir(), 'vtpm-emu-bin-'));
  t.teardown(() => rm(bin, { recursive: true, force: true }));
  await chmod(bin, 0o755); // the swtpm user must be able to find it there, or PATH falls through to the real one
  await symlink(fake('exit'), path.join(bin, 'swtpm'));
  const c = config({ tempDir: base });
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const store = new Map<string, unknown>();
  const results = { get: <T>(n: string) => store.get(n) as T };
  const result = await runProbe(emulationProbe, { config: c, log: silent, hostPath: hostPathResolver('/'), env, results, stateFiles: testStateFiles(), facts: new HostFacts({ config: c, hostPath: hostPathResolver('/') }) });
  t.equal(result.ok, true, 'failed checks are data, not a failed probe');
  const outcomes = emulationOutcomes(result.data as EmulationData);
  t.ok(outcomes.length === 3 && outcomes.every((o) => !o.ok && o.failedStep === 'spawn'));
  const verdict = computeVerdict({ domcaps: null, swtpm: null, host: null, emulation: outcomes });
  t.equal(verdict.anyUsable, false);
  for (const comb of verdict.combinations) {
    t.ok(comb.reasons.some((r) => r.code === 'EMULATION_FAILED' && r.message.includes("at step 'spawn'") && r.message.includes('Could not initialize libtpms')), `${comb.version} ${comb.model}`);
  }
  const section = emulationProbe.report!(result as never);
  t.equal(section.ok, false);
  t.match(section.summary, /3 of 3 TPM emulation check\(s\) failed/);
  t.same(await leftovers(base), { processes: [], entries: [] });
});

t.test('the round stops within its overall timeout; checks without time are marked not-run', async (t) => {
  const base = await tempBase(t);
  const c = config({ swtpmPath: fake('hang'), tempDir: base, runAs: 'self', timeoutSeconds: 30 });
  c.emulation.timeoutSeconds = 1.2;
  const store = new Map<string, unknown>();
  const result = await runProbe(emulationProbe, { config: c, log: silent, hostPath: hostPathResolver('/'), env: process.env, results: { get: <T>(n: string) => store.get(n) as T }, stateFiles: testStateFiles(), facts: new HostFacts({ config: c, hostPath: hostPathResolver('/') }) });
  t.equal(result.ok, true);
  const checks = (result.data as EmulationData).checks;
  t.equal(checks[0]?.failedStep, 'spawn');
  t.ok(checks.every((x) => !x.ok));
  t.ok(checks.some((x) => x.failedStep === 'not-run'), 'later checks had no time left');
  t.same(await leftovers(base), { processes: [], entries: [] });
});

t.test('workspaces left by a SIGKILLed agent are swept, with their orphaned swtpm', async (t) => {
  const base = await tempBase(t);
  // A pid that no longer exists: a process that has already exited.
  const deadPid = spawnSync('true').pid!;
  const stale = path.join(base, `vtpm-agent-emu-${deadPid}-AbCdEf`);
  await mkdir(stale, { mode: 0o700 });
  const orphan = spawn(fake('hang'), ['socket', '--server', `type=unixio,path=${stale}/a.sock`], { stdio: 'ignore', detached: true });
  const orphanGone = new Promise((r) => orphan.once('exit', r));
  t.teardown(() => {
    if (orphan.exitCode === null && orphan.signalCode === null) orphan.kill('SIGKILL');
  });
  for (let i = 0; i < 2000 && !(await leftovers(base)).processes.length; i++) await new Promise((r) => setTimeout(r, 5));
  // >= 1: the wrapper's $(...) subshell briefly shows the same command line.
  t.ok((await leftovers(base)).processes.length >= 1, 'the orphan runs');
  const data = await round(config({ tempDir: base, runAs: 'self', versions: ['2.0'], levels: ['basic'] }));
  t.equal(data.checks[0]?.ok, true);
  await orphanGone;
  await t.rejects(stat(stale), { code: 'ENOENT' }, 'stale workspace removed');
  t.same(await leftovers(base), { processes: [], entries: [] });
});

t.test('a swtpm user that does not exist fails every check at the principal step', async (t) => {
  const base = await tempBase(t);
  const c = config({ tempDir: base });
  c.swtpm.user = 'no-such-swtpm-user';
  const data = await round(c);
  t.equal(data.checks.length, 3);
  for (const check of data.checks) t.match(check, { ok: false, failedStep: 'principal', message: /swtpm user 'no-such-swtpm-user' does not exist/ });
  t.same(await leftovers(base), { processes: [], entries: [] });
});
