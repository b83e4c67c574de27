import { readFileSync } from 'node:fs';
import t from 'tap';
import { emptyReasonCounts } from '../../src/barbican/reasons.js';
import { classify, parseLine } from '../../src/logs/classify.js';
import { emptyIncidentState, IncidentTracker, parseIncidentState } from '../../src/logs/incidents.js';
import { isCandidateLine, scanCandidateLines } from '../../src/logs/scan.js';

const fixture = readFileSync(new URL('../fixtures/nova-compute/barbican-failures.log', import.meta.url), 'utf8');
const lines = fixture.split('\n').filter((l) => l.length > 0);
const I = (d: string) => `${d.repeat(8)}-${d.repeat(4)}-4${d.repeat(3)}-8${d.repeat(3)}-${d.repeat(12)}`;

function run(ls: string[], tracker = new IncidentTracker(emptyIncidentState(), { windowMs: 120_000 })) {
  const restartFailures: Array<{ instanceUuid: string; reason: string | null }> = [];
  for (const text of ls) {
    const line = parseLine(text);
    const o = tracker.observe(line, classify(line));
    if (o.restartFailure) restartFailures.push(o.restartFailure);
  }
  return { tracker, restartFailures };
}

t.test('parses oslo.log context and exception prefixes', async (t) => {
  const ctx = parseLine(lines.find((l) => l.includes('Failed to resume instance'))!);
  t.equal(ctx.level, 'WARNING');
  t.equal(ctx.pid, 4242);
  t.equal(ctx.logger, 'nova.compute.manager');
  t.equal(ctx.requestId, '5c1f0a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f');
  t.equal(ctx.instanceUuid, I('1'));
  t.equal(ctx.message, 'Failed to resume instance');
  t.ok(ctx.ts !== null && Number.isFinite(ctx.ts));
  const tb = parseLine(lines.find((l) => l.includes('Traceback'))!);
  t.equal(tb.requestId, null, 'traceback lines carry no request id');
  t.equal(tb.instanceUuid, I('5'));
  t.equal(tb.message, 'Traceback (most recent call last):');
  const bare = parseLine('Key manager error: Forbidden: nope', { ts: 5, pid: 9, level: 'ERROR' });
  t.same([bare.ts, bare.pid, bare.level], [5, 9, 'ERROR'], 'hints fill what the text lacks (journald)');
});

t.test('classifies each reason and ignores what is not a failure', async (t) => {
  const c = (text: string) => classify(parseLine(text)).reason;
  const p = '2026-11-28 16:00:00.000 1 ERROR castellan.key_manager.barbican_key_manager [-] ';
  t.equal(c(`${p}Error retrieving object: Forbidden: Secret payload retrieval attempt not allowed - please review your user/project privileges`), 'forbidden');
  t.equal(c(`${p}Error creating Barbican client: The service catalog is empty.`), 'empty_catalog');
  t.equal(c(`${p}Error creating Barbican client: No valid authentication is available`), 'unauthenticated');
  t.equal(c(`${p}Error retrieving object: 401 Client error: Unauthorized`), 'unauthenticated');
  t.equal(c(`${p}Error retrieving object: Not Found: Secret not found.`), 'not_found');
  t.equal(c(`${p}Key not found, uuid: 6d1c1f0e-1111-4111-8111-111111111111`), 'not_found');
  t.equal(c(`${p}Error retrieving object: 503 Server error: Service Unavailable`), 'unavailable');
  t.equal(c(`${p}Error creating Barbican client: Unable to establish connection to http://barbican:9311: Connection refused`), 'unavailable');
  t.equal(c(`${p}Error retrieving object: something nobody expected`), 'other');
  t.equal(c('2026-11-28 16:00:00.000 1 ERROR nova.compute.manager [-] [instance: 11111111-1111-4111-8111-111111111111] Cannot reboot instance: VTPMSecretForbidden'), 'forbidden');
  t.equal(c('2026-11-28 16:00:00.000 1 DEBUG oslo_service.service [-] barbican.auth_endpoint = http://x/v3 log_opt_values'), null, 'a DEBUG option dump mentions Barbican on every start');
  t.equal(c('2026-11-28 16:00:00.000 1 ERROR nova.compute.manager [instance: 11111111-1111-4111-8111-111111111111]   File "/usr/lib/python3/dist-packages/castellan/key_manager/barbican_key_manager.py", line 577, in get'), null, 'traceback frames are not failures');
  t.equal(c('2026-11-28 16:00:00.000 1 ERROR nova.compute.manager [-] Timed out waiting for a reply: Connection refused'), null, 'not about Barbican');
  t.equal(c('Key manager error: The service catalog is empty.'), 'empty_catalog', 'a line of unknown shape is judged by its text');
  t.equal(c('\u0000\u0001\ufffd\ufffdbarbican Forbidden\u0007'), 'forbidden', 'garbage does not crash the parser');
});

t.test('the fixture: one count per failure, attributed to the right guests', async (t) => {
  const { tracker, restartFailures } = run(lines);
  t.same(tracker.totals, { ...emptyReasonCounts(), empty_catalog: 3, forbidden: 2, not_found: 1, unavailable: 1, unauthenticated: 1, other: 1 });
  const byInstance = Object.fromEntries(tracker.instances().map((i) => [i.instanceUuid, i.reason]));
  t.same(byInstance, { [I('1')]: 'empty_catalog', [I('2')]: 'empty_catalog', [I('3')]: 'empty_catalog', [I('4')]: 'forbidden', [I('5')]: 'forbidden', [I('6')]: 'not_found' });
  t.same(
    restartFailures.filter((r) => r.reason !== null),
    [I('1'), I('2'), I('3')].map((i) => ({ instanceUuid: i, reason: 'empty_catalog' })).concat([{ instanceUuid: I('4'), reason: 'forbidden' }]),
  );
  t.ok(restartFailures.some((r) => r.instanceUuid === I('7') && r.reason === null), 'a swtpm failure is not blamed on Barbican');
  t.equal(tracker.instance(I('4'))!.restartFailed, true);
  t.equal(tracker.instance(I('5'))!.restartFailed, false);
});

t.test('saving and restoring between any two lines gives the same result', async (t) => {
  const whole = run(lines).tracker;
  for (let cut = 0; cut <= lines.length; cut += 1) {
    const first = run(lines.slice(0, cut)).tracker;
    const restored = parseIncidentState(JSON.parse(JSON.stringify(first.snapshot())));
    t.ok(restored, `state restorable at line ${cut}`);
    const second = run(lines.slice(cut), new IncidentTracker(restored!, { windowMs: 120_000 })).tracker;
    if (JSON.stringify(second.totals) !== JSON.stringify(whole.totals)) t.fail(`totals differ when restarting at line ${cut}`);
  }
  t.same(parseIncidentState({ version: 2 }), null, 'an unknown version is rejected');
  t.same(parseIncidentState('garbage'), null);
});

t.test('the same failure after the window counts again; a second guest in the window counts too', async (t) => {
  const a = '2026-11-28 16:00:00.000 7 ERROR nova.compute.manager [instance: 11111111-1111-4111-8111-111111111111] Key manager error: Forbidden';
  const b = '2026-11-28 16:05:00.000 7 ERROR nova.compute.manager [instance: 11111111-1111-4111-8111-111111111111] Key manager error: Forbidden';
  const c = '2026-11-28 16:05:00.500 7 ERROR nova.compute.manager [instance: 22222222-2222-4222-8222-222222222222] Key manager error: Forbidden';
  t.equal(run([a, a, b, c]).tracker.totals.forbidden, 3);
});

t.test('the chunk scanner keeps failure-level and unknown-shape lines only', async (t) => {
  const text = [
    '2026-11-28 16:00:00.001 4242 INFO nova.service [-] Starting',
    '2026-11-28 16:00:00.002 4242 DEBUG x [-] barbican.auth_endpoint = y',
    '2026-11-28 16:00:00.003 4242 ERROR castellan [-] Error retrieving object: Forbidden',
    '2026-11-28T16:00:00.004 4242 WARNING nova [-] Failed to resume instance',
    '2026-11-28 16:00:00 4242 CRITICAL nova [-] x',
    'Traceback (most recent call last):',
    '',
  ].join('\n');
  const buf = Buffer.from(text);
  const got: string[] = [];
  scanCandidateLines(buf, 0, buf.length, (s, e) => got.push(buf.toString('utf8', s, e)));
  t.same(got, [
    '2026-11-28 16:00:00.003 4242 ERROR castellan [-] Error retrieving object: Forbidden',
    '2026-11-28T16:00:00.004 4242 WARNING nova [-] Failed to resume instance',
    '2026-11-28 16:00:00 4242 CRITICAL nova [-] x',
    'Traceback (most recent call last):',
  ]);
  const info = Buffer.from('2026-11-28 16:00:00.001 4242 INFO nova.service [-] Starting');
  t.equal(isCandidateLine(info, 0, info.length), false);
  // Every line of the fixture that classifies as something passes the scanner.
  const all = Buffer.from(fixture);
  const kept = new Set<string>();
  scanCandidateLines(all, 0, all.length, (s, e) => kept.add(all.toString('utf8', s, e)));
  for (const l of lines) {
    const c = classify(parseLine(l));
    if (c.reason !== null || c.marker !== null) t.ok(kept.has(l), `scanner keeps: ${l.slice(0, 80)}`);
  }
});
