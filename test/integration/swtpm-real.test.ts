import { execFileSync } from 'node:child_process';
/**
 * The emulation checks against the real Debian swtpm, both TPM versions and both levels, run as
 * the swtpm user (the default for root) and as the agent itself.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { requireCommands } from '../harness/components.js';
import { config, leftovers, round, tempBase } from '../fixtures/fake-swtpm/helpers.js';

requireCommands('swtpm');
if (process.getuid?.() !== 0) throw new Error('the swtpm integration tests run as root (to exercise the swtpm-user principal)');

/** A real swtpm behind a wrapper that records who ran it. */
async function whoamiSwtpm(base: string): Promise<{ bin: string; log: string }> {
  const dir = path.join(base, 'bin');
  await mkdir(dir, { mode: 0o755 });
  const log = path.join(dir, 'whoami.log');
  await writeFile(log, '');
  await chmod(log, 0o666);
  const bin = path.join(dir, 'swtpm');
  await writeFile(bin, `#!/bin/sh\necho "$(id -u):$(id -g)" >> ${log}\nexec swtpm "$@"\n`, { mode: 0o755 });
  return { bin, log };
}

t.test('all checks pass as the swtpm user (root default), nothing left behind', async (t) => {
  const base = await tempBase(t);
  const work = path.join(base, 'work');
  await mkdir(work, { mode: 0o755 });
  const { bin, log } = await whoamiSwtpm(base);
  const data = await round(config({ swtpmPath: bin, tempDir: work }));
  t.same(
    data.checks.map((c) => [c.version, c.level, c.ok, c.failedStep, c.message]),
    [
      ['1.2', 'basic', true, null, null],
      ['2.0', 'basic', true, null, null],
      ['2.0', 'state', true, null, null],
    ],
  );
  t.equal(data.runAs.user, 'tss');
  const basic12 = data.checks[0]!;
  const basic20 = data.checks[1]!;
  t.equal(basic12.manufacturer, 'IBM');
  t.match(basic12.firmwareVersion, /^\d+\.\d+$/);
  t.equal(basic20.manufacturer, 'IBM');
  t.match(basic20.firmwareVersion, /^\d+\.\d+/);
  t.equal(basic20.specRevision, '1.64');
  t.equal(data.checks[2]!.manufacturer, 'IBM', 'the state check reports the TPM identity too');
  t.ok(data.checks.every((c) => c.lastSuccessAt !== null && c.durationSeconds > 0));
  t.same(
    data.checks[2]!.steps.map((s) => s.name),
    ['workspace', 'state-dir', 'spawn', 'init', 'startup', 'getcapability', 'nv-define', 'nv-write', 'shutdown', 'stop', 'restart', 'restart-init', 'restart-startup', 'nv-read', 'nv-compare', 'restart-shutdown', 'restart-stop', 'wrong-key'],
  );
  const ids = (await readFile(log, 'utf8')).trim().split('\n');
  t.equal(ids.length, 5, 'one swtpm for each basic check, three for the state check');
  // tss's ids as this host's account database has them (they differ between hosts).
  const tssIds = `${execFileSync('id', ['-u', 'tss'], { encoding: 'utf8' }).trim()}:${execFileSync('getent', ['group', 'tss'], { encoding: 'utf8' }).split(':')[2]}`;
  t.same([...new Set(ids)], [tssIds], `every swtpm ran as tss (${tssIds}), none as root: ${ids.join(' ')}`);
  t.same(await leftovers(work), { processes: [], entries: [] });
});

t.test('runAs self runs swtpm as the agent (root here)', async (t) => {
  const base = await tempBase(t);
  const work = path.join(base, 'work');
  await mkdir(work, { mode: 0o700 });
  const { bin, log } = await whoamiSwtpm(base);
  const data = await round(config({ swtpmPath: bin, tempDir: work, runAs: 'self', levels: ['basic'], versions: ['2.0'] }));
  t.same(data.checks.map((c) => [c.version, c.level, c.ok]), [['2.0', 'basic', true]]);
  t.equal(data.runAs.user, null);
  t.equal(data.runAs.uid, 0);
  t.same((await readFile(log, 'utf8')).trim().split('\n'), ['0:0']);
  t.same(await leftovers(work), { processes: [], entries: [] });
});

t.test('a temp dir the swtpm user cannot reach fails as libvirt would meet it, root does not', async (t) => {
  // A 0700 root-owned parent: root creates and chowns the workspace, but tss cannot traverse to it.
  const base = await tempBase(t, 0o700);
  const asTss = await round(config({ tempDir: base, levels: ['basic'], versions: ['2.0'] }));
  const c = asTss.checks[0]!;
  t.equal(c.ok, false);
  t.equal(c.failedStep, 'spawn');
  t.equal(c.errorCode, 'VTPM_ERR_SWTPM_START');
  t.match(c.message, /swtpm (exited with code \d+|did not open)/);
  t.same(await leftovers(base), { processes: [], entries: [] });
  const asSelf = await round(config({ tempDir: base, runAs: 'self', levels: ['basic'], versions: ['2.0'] }));
  t.equal(asSelf.checks[0]!.ok, true, 'root can use the same directory');
  t.same(await leftovers(base), { processes: [], entries: [] });
});

t.test('checks are serialised: two rounds asked at once never overlap', async (t) => {
  const base = await tempBase(t);
  const c = config({ tempDir: base, levels: ['basic'], versions: ['2.0'] });
  const [a, b] = await Promise.all([round(c), round(c)]);
  t.ok(a.checks[0]!.ok && b.checks[0]!.ok);
  const [first, second] = [a.checks[0]!, b.checks[0]!].sort((x, y) => x.startedAt - y.startedAt);
  t.ok(second!.startedAt >= first!.startedAt + first!.durationSeconds * 1000 - 5, 'the second started after the first ended (ms clock rounding aside)');
  t.same(await leftovers(base), { processes: [], entries: [] });
});
