import { createServer } from 'node:net';
import t from 'tap';
import { spawnCli, waitFor } from '../harness/agent.js';
import { startJournald } from '../harness/journald.js';

/**
 * The agent as systemd runs it (stdout a journald stream, JOURNAL_STREAM naming it) against a
 * real systemd-journald: `journalctl -p err` shows its error lines and nothing else, and every
 * line is stored with the priority of its pino level.
 */
t.test('under journald, journalctl -p err shows only the errors', async (t) => {
  const journald = await startJournald();
  t.teardown(() => journald.stop());
  // A port already taken: the agent logs info lines, then fails to start with a fatal line.
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const { socket, journalStream } = await journald.streamFor('vtpm-agent');
  const child = spawnCli(['serve', '--set', `listen.port=${port}`, '--set', 'listen.host=127.0.0.1', '--set', 'emulation.enabled=false', '--log.level', 'debug'], {
    ...process.env,
    VTPM_AGENT_CONFIG: '/dev/null',
    JOURNAL_STREAM: journalStream,
  }, socket);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 1, 'start fails on the taken port');
  socket.end();
  await waitFor('the fatal line in the journal', () => journald.entries(['-t', 'vtpm-agent', '-p', 'err']).length > 0, 15_000, 200);
  const all = journald.entries(['-t', 'vtpm-agent']);
  const errors = journald.entries(['-t', 'vtpm-agent', '-p', 'err']);
  t.ok(all.some((e) => e.PRIORITY === '6' && /starting vtpm-agent/.test(e.MESSAGE)), 'info lines are stored at priority 6');
  t.ok(errors.length >= 1);
  for (const entry of errors) {
    const record = JSON.parse(entry.MESSAGE) as { level: string };
    t.ok(['error', 'fatal'].includes(record.level), `-p err shows only errors (${record.level}: ${entry.MESSAGE.slice(0, 80)})`);
  }
  t.ok(errors.some((e) => /could not start/.test(e.MESSAGE) && e.PRIORITY === '2'), 'fatal is stored as crit (2)');
  const byLevel: Record<string, string> = { fatal: '2', error: '3', warn: '4', info: '6', debug: '7', trace: '7' };
  for (const entry of all) {
    t.notMatch(entry.MESSAGE, /^<\d>/, 'the prefix is consumed by journald, not stored');
    const level = (JSON.parse(entry.MESSAGE) as { level: string }).level;
    t.equal(entry.PRIORITY, byLevel[level], `${level} line stored at priority ${byLevel[level]}`);
  }
});
