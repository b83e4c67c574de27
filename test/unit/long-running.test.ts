import t from 'tap';
import { spawnLongRunning } from '../../src/util/long-running.js';

const env = { PATH: process.env.PATH };

t.test('stdout arrives line by line, the exit is typed, stderr keeps its tail', async (t) => {
  const lines: string[] = [];
  const child = await spawnLongRunning('sh', ['-c', 'printf "a\\nb\\npartial"; head -c 10000 /dev/zero | tr "\\000" x >&2; echo END >&2; exit 3'], {
    env,
    onLine: (l) => lines.push(l),
    stderrTailBytes: 100,
  });
  t.ok(child.pid > 0);
  const exit = await child.exited;
  t.same(lines, ['a', 'b'], 'complete lines only; an unterminated last line is dropped');
  t.equal(exit.code, 3);
  t.equal(exit.signal, null);
  t.equal(exit.lineTooLong, false);
  t.ok(exit.stderr.length <= 100, `stderr bounded (${exit.stderr.length})`);
  t.match(exit.stderr, /x+END\n$/, 'the tail is kept');
  t.same(child.exitStatus(), { code: 3, signal: null });
});

t.test('a line longer than the cap kills the child', async (t) => {
  const lines: string[] = [];
  const child = await spawnLongRunning('sh', ['-c', 'echo ok; head -c 100000 /dev/zero | tr "\\000" x; exec sleep 600'], {
    env,
    onLine: (l) => lines.push(l),
    maxLineBytes: 1000,
  });
  const exit = await child.exited;
  t.same(lines, ['ok']);
  t.equal(exit.lineTooLong, true);
  t.equal(exit.signal, 'SIGTERM');
  t.match(exit.stderr, /longer than 1000 bytes: killed/);
});

t.test('a missing binary is never spawned; an aborted call does not start', async (t) => {
  await t.rejects(spawnLongRunning('vtpm-agent-no-such-binary', [], { env }), { code: 'VTPM_ERR_EXEC_NOT_FOUND' });
  await t.rejects(spawnLongRunning('sleep', ['5'], { env, signal: AbortSignal.abort() }), { code: 'VTPM_ERR_EXEC_ABORTED' });
});

t.test('a spawn that fails after the lookup is a typed error', async (t) => {
  await t.rejects(spawnLongRunning('true', [], { env, cwd: '/nonexistent/vtpm-agent-cwd' }), { code: 'VTPM_ERR_EXEC_FAILED', details: { kind: 'spawn', errno: 'ENOENT' } });
});

t.test('fd 3 input reaches the child; credentials do not', async (t) => {
  const lines: string[] = [];
  const child = await spawnLongRunning('sh', ['-c', 'cat <&3; echo "pw=${OS_PASSWORD:-none}"'], {
    env: { ...env, OS_PASSWORD: 'secret' },
    fd3Input: Buffer.from('passphrase\n'),
    onLine: (l) => lines.push(l),
  });
  await child.exited;
  t.same(lines, ['passphrase', 'pw=none']);
});

t.test('stop and the cancel signal end the child; SIGKILL follows a SIGTERM it ignores', async (t) => {
  const sleeper = await spawnLongRunning('sleep', ['600'], { env });
  t.equal(sleeper.exitStatus(), null, 'running');
  t.equal((await sleeper.stop()).signal, 'SIGTERM');
  t.equal((await sleeper.stop()).signal, 'SIGTERM', 'stop again is harmless');

  const controller = new AbortController();
  const cancelled = await spawnLongRunning('sleep', ['600'], { env, signal: controller.signal });
  controller.abort();
  t.equal((await cancelled.exited).signal, 'SIGTERM');

  const started = performance.now();
  const stubborn = await spawnLongRunning('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done'], { env, onLine: () => undefined });
  await new Promise((r) => setTimeout(r, 100)); // the trap is set
  t.equal((await stubborn.stop()).signal, 'SIGKILL');
  t.ok(performance.now() - started >= 1000, 'after the grace period');
});
