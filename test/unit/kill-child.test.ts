import { spawn } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { runCommand } from '../../src/util/exec.js';

const repo = path.resolve(import.meta.dirname, '../..');

/**
 * Runs `body` in a node process of its own process group, which reports whether a SIGTERM reached
 * its group: a kill(0) there must never reach the test runner's group.
 */
function inOwnGroup(body: string): Promise<string> {
  const script = `
    process.on('SIGTERM', () => { console.log('GROUP-SIGNALLED'); });
    const { spawn } = await import('node:child_process');
    const { killChild } = await import(${JSON.stringify(path.join(repo, 'src/util/kill-child.ts'))});
    ${body}
    await new Promise((r) => setTimeout(r, 300));
    console.log('DONE');
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

t.test('killChild on a child whose spawn failed sends nothing (kill() would signal our own process group)', async (t) => {
  const out = await inOwnGroup(`
    const child = spawn('/nonexistent/vtpm-agent-no-such-binary', []);
    child.on('error', () => {});
    console.log('sent=' + killChild(child, 'SIGTERM'));
  `);
  t.match(out, /sent=false/);
  t.match(out, /DONE/);
  t.notMatch(out, /GROUP-SIGNALLED/, 'the process group was not signalled');
});

t.test('killChild on a running child signals that child', async (t) => {
  const out = await inOwnGroup(`
    const child = spawn('sleep', ['30']);
    const closed = new Promise((r) => child.on('close', (code, signal) => r(signal)));
    console.log('sent=' + killChild(child, 'SIGTERM'));
    console.log('signal=' + (await closed));
    console.log('again=' + killChild(child, 'SIGTERM'));
  `);
  t.match(out, /sent=true/);
  t.match(out, /signal=SIGTERM/);
  t.match(out, /again=false/, 'an exited child is not signalled again');
  t.notMatch(out, /GROUP-SIGNALLED/);
});

t.test('runCommand never spawns a missing binary (a cancelled failed spawn would kill pid 0)', async (t) => {
  const controller = new AbortController();
  const pending = runCommand('vtpm-agent-no-such-binary', [], { timeoutMs: 1000, maxOutputBytes: 1024, signal: controller.signal });
  controller.abort();
  await t.rejects(pending, { code: 'VTPM_ERR_EXEC_NOT_FOUND' });
  await t.rejects(runCommand('true', [], { timeoutMs: 1000, maxOutputBytes: 1024, signal: AbortSignal.abort() }), { code: 'VTPM_ERR_EXEC_ABORTED' }, 'an aborted call does not start');
  const ok = await runCommand('sh', ['-c', 'echo hi'], { timeoutMs: 5000, maxOutputBytes: 1024 });
  t.equal(ok.stdout, 'hi\n');
});
