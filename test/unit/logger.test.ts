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
