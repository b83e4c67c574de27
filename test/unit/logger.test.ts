import t from 'tap';
import { createLogger } from '../../src/logger.js';

t.test('credentials, tokens and payloads never reach a log line', async (t) => {
  const lines: string[] = [];
  const log = createLogger('debug', { write: (s: string) => lines.push(s) });
  log.info({ password: 'hunter2', auth: { password: 'p4ss', applicationCredentialSecret: 'acs-1' } }, 'auth');
  log.info({ token: 'gAAAAtoken', headers: { 'x-auth-token': 'gAAAAheader', 'x-subject-token': 'gAAAAsubject' } }, 'request');
  log.info({ secret: { payload: 'c2VjcmV0' }, payload: 'raw-payload', authorization: 'Bearer abc' }, 'secret');
  const text = lines.join('');
  for (const value of ['hunter2', 'p4ss', 'acs-1', 'gAAAAtoken', 'gAAAAheader', 'gAAAAsubject', 'c2VjcmV0', 'raw-payload', 'Bearer abc']) {
    t.notOk(text.includes(value), `${value} is redacted`);
  }
  t.match(text, /\[redacted\]/);
  const first = JSON.parse(lines[0]!);
  t.match(first, { level: 'info', service: 'vtpm-agent', msg: 'auth' });
  t.type(first.time, 'string');
});

import { openSync, closeSync, fstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LogOutput, jsonLineToLogfmt, syslogPriority, writesToJournal } from '../../src/logger.js';

t.test('pino levels map to the syslog priorities of sd-daemon.h', async (t) => {
  // SD_CRIT "<2>", SD_ERR "<3>", SD_WARNING "<4>", SD_INFO "<6>", SD_DEBUG "<7>".
  t.same([60, 50, 40, 30, 20, 10].map(syslogPriority), [2, 3, 4, 6, 7, 7]);
});

t.test('under journald every line starts with its <N> priority, and nothing else changes', async (t) => {
  const lines: string[] = [];
  const log = createLogger('trace', new LogOutput({ sink: { write: (s: string) => lines.push(s) }, journal: true }));
  log.fatal('f');
  log.error({ err: new Error('boom') }, 'e');
  log.warn('w');
  log.info('i');
  log.debug('d');
  log.trace('t');
  t.same(lines.map((l) => /^<(\d)>/.exec(l)?.[1]), ['2', '3', '4', '6', '7', '7']);
  for (const line of lines) {
    t.equal(line.split('\n').length, 2, 'one line per entry (journald splits on newlines)');
    t.doesNotThrow(() => JSON.parse(line.replace(/^<\d>/, '')), 'the rest is the pino JSON line');
  }
  t.match(JSON.parse(lines[1]!.slice(3)), { level: 'error', msg: 'e', err: { message: 'boom' } });
});

t.test('without journald the line is plain pino JSON', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', new LogOutput({ sink: { write: (s: string) => lines.push(s) }, journal: false }));
  log.error('e');
  t.equal(lines[0]![0], '{');
  t.match(JSON.parse(lines[0]!), { level: 'error', msg: 'e' });
});

t.test('logfmt: key=value, nested keys with dots, quoting and escapes keep one line', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', new LogOutput({ sink: { write: (s: string) => lines.push(s) }, format: 'logfmt', journal: true }));
  log.warn({ probe: 'swtpm', detail: { path: '/var/lib/x', code: 3 }, text: 'two\nlines "quoted"', empty: '', password: 'hunter2' }, 'probe failed');
  const line = lines[0]!;
  t.match(line, /^<4>time=\S+ level=warn msg="probe failed" service=vtpm-agent probe=swtpm detail\.path=\/var\/lib\/x detail\.code=3 text="two\\nlines \\"quoted\\"" empty="" password=\[redacted\]\n$/);
  t.equal(line.split('\n').length, 2);
  t.equal(jsonLineToLogfmt('not json\n'), 'not json\n', 'a line that is not JSON passes through');
});

t.test('JOURNAL_STREAM counts only when it names the fd written to', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-logger-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fd = openSync(path.join(dir, 'out'), 'w');
  const other = openSync(path.join(dir, 'other'), 'w');
  t.teardown(() => {
    closeSync(fd);
    closeSync(other);
  });
  const st = fstatSync(fd, { bigint: true });
  const stream = `${st.dev}:${st.ino}`;
  t.equal(writesToJournal(fd, { JOURNAL_STREAM: stream }), true);
  t.equal(writesToJournal(other, { JOURNAL_STREAM: stream }), false, 'inherited by a process whose output goes elsewhere');
  t.equal(writesToJournal(fd, {}), false);
  t.equal(writesToJournal(fd, { JOURNAL_STREAM: 'garbage' }), false);
  const output = new LogOutput({ fd, env: { JOURNAL_STREAM: stream }, sync: true });
  t.equal(output.journal, true);
});
