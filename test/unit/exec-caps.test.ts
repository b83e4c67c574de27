/**
 * Output caps of runCommand: a child printing past its cap is killed at once (even one that
 * survives a closed pipe), the call fails with VTPM_ERR_OUTPUT_TOO_LARGE naming the command, the
 * stream and the cap, and output within the cap comes back byte for byte.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { AgentError } from '../../src/errors.js';
import { formatBytes, runCommand } from '../../src/util/exec.js';
import { pidAlive } from '../harness/libvirt-guests.js';

async function failure(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AgentError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

t.test('a child printing 50 MB is stopped at a 1 MiB cap with a typed error', async (t) => {
  const err = await failure(runCommand('sh', ['-c', 'head -c 52428800 /dev/zero | tr "\\0" x'], { timeoutMs: 60_000, maxOutputBytes: 1024 * 1024 }));
  t.equal(err.code, 'VTPM_ERR_OUTPUT_TOO_LARGE');
  t.equal(err.message, 'sh -c head -c 52428800 /dev/zero | tr "\\0" x printed more than 1 MiB on stdout (the cap for this call) and was killed');
  t.match(err.details, { kind: 'too-large', stream: 'stdout', maxOutputBytes: 1024 * 1024 });
});

// The call's own timeout is 100 s and the test's 20 s: only the kill at the cap lets it pass.
t.test('a child that survives the closed pipe and keeps running is killed, not waited for', { timeout: 20_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vtpm-exec-cap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pidFile = path.join(dir, 'pid');
  // SIGPIPE ignored: execa closing its end of the pipe alone would leave this child to the timeout.
  const script = `echo $$ > ${pidFile}; trap "" PIPE; head -c 5000000 /dev/zero 2>/dev/null; exec sleep 120`;
  const err = await failure(runCommand('sh', ['-c', script], { timeoutMs: 100_000, maxOutputBytes: 64 * 1024 }));
  t.equal(err.code, 'VTPM_ERR_OUTPUT_TOO_LARGE');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  t.notOk(pidAlive(pid), 'the child is gone when the call returns');
});

t.test('stderr has the same cap', async (t) => {
  const err = await failure(runCommand('sh', ['-c', 'head -c 300000 /dev/zero >&2'], { timeoutMs: 60_000, maxOutputBytes: 64 * 1024, label: 'noisy-tool' }));
  t.equal(err.code, 'VTPM_ERR_OUTPUT_TOO_LARGE');
  t.equal(err.message, 'noisy-tool printed more than 64 KiB on stderr (the cap for this call) and was killed');
});

t.test('output up to the cap comes back whole, multi-byte text decoded', async (t) => {
  const exact = await runCommand('sh', ['-c', 'head -c 65536 /dev/zero | tr "\\0" y'], { timeoutMs: 60_000, maxOutputBytes: 64 * 1024 });
  t.equal(exact.stdout.length, 65536, 'exactly the cap is allowed');
  const text = await runCommand('printf', ['%s', 'Größe ✓'], { timeoutMs: 10_000, maxOutputBytes: 1024 });
  t.equal(text.stdout, 'Größe ✓');
  t.equal(text.exitCode, 0);
});

t.test('formatBytes', async (t) => {
  t.equal(formatBytes(1024 * 1024), '1 MiB');
  t.equal(formatBytes(64 * 1024), '64 KiB');
  t.equal(formatBytes(16896), '16896 B');
});
