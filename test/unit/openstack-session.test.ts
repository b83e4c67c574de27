/**
 * The session against a fake HTTP server, used only for faults no real service produces on
 * demand: malformed JSON, oversized bodies, 500s, hangs, refused tokens. Real Keystone and
 * Placement are exercised in test/integration/placement-*.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { openstackConfigSchema, type OpenStackConfigInput } from '../../src/openstack/config.js';
import type { ResolvedCloud } from '../../src/openstack/credentials.js';
import { OpenStackError } from '../../src/openstack/errors.js';
import { OpenStackSession, compareMicroversions, parseVersionDocument } from '../../src/openstack/session.js';
import { backoffDelay } from '../../src/openstack/backoff.js';
import { parseErrorBody } from '../../src/openstack/errors.js';
import { tokenRequestBody, tokensUrl } from '../../src/openstack/keystone.js';
import { findEndpoint, parseCatalog } from '../../src/openstack/catalog.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

interface Fake {
  url: string;
  tokens: number;
  hits: Map<string, number>;
  lastToken: string | null;
  route(method: string, path: string, handler: Handler): void;
  close(): Promise<void>;
}

async function fakeCloud(t: { teardown(fn: () => unknown): void }, opts: { expiresInMs?: number } = {}): Promise<Fake> {
  const routes = new Map<string, Handler>();
  const sockets = new Set<import('node:net').Socket>();
  const fake: Fake = {
    url: '',
    tokens: 0,
    hits: new Map(),
    lastToken: null,
    route: (method, path, handler) => routes.set(`${method} ${path}`, handler),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const key = `${req.method} ${req.url}`;
      fake.hits.set(key, (fake.hits.get(key) ?? 0) + 1);
      fake.lastToken = (req.headers['x-auth-token'] as string | undefined) ?? fake.lastToken;
      const handler = routes.get(key);
      if (handler) return handler(req, res, body);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"status":404,"title":"Not Found","detail":"no route"}]}');
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.route('POST', '/v3/auth/tokens', (_req, res, body) => {
    const auth = JSON.parse(body).auth;
    if (auth.identity.password.user.password !== 'right') {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}');
      return;
    }
    fake.tokens += 1;
    const token = `tok-${fake.tokens}`;
    const now = Date.now();
    res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': token }).end(
      JSON.stringify({
        token: {
          expires_at: new Date(now + (opts.expiresInMs ?? 3600_000)).toISOString(),
          issued_at: new Date(now).toISOString(),
          roles: [{ id: 'r', name: 'admin' }],
          user: { id: 'u1' },
          project: { id: 'p1' },
          catalog: [
            {
              type: 'fake',
              name: 'fake',
              endpoints: [
                { interface: 'public', region_id: 'RegionOne', url: `${fake.url}/public` },
                { interface: 'internal', region_id: 'RegionOne', url: `${fake.url}/svc/` },
              ],
            },
          ],
        },
      }),
    );
  });
  t.teardown(() => fake.close());
  return fake;
}

const log = pino({ level: 'silent' });

function session(fake: Fake, overrides: OpenStackConfigInput = {}, extra: { password?: string; now?: () => number } = {}): OpenStackSession {
  const cloud: ResolvedCloud = {
    source: 'test',
    authUrl: `${fake.url}/v3`,
    method: { type: 'password', user: { name: 'agent', domain: { id: 'default' } }, password: extra.password ?? 'right' },
    scope: { id: 'p1' },
    interface: 'internal',
    region: null,
    cacert: null,
    verify: true,
    warnings: [],
  };
  const config = openstackConfigSchema.parse({ timeoutSeconds: 2, retryBaseDelaySeconds: 0.01, retryMaxDelaySeconds: 0.05, ...overrides });
  return new OpenStackSession({ cloud, config, log, ...(extra.now ? { now: extra.now } : {}) });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function rejects(t: { ok: (...a: any[]) => unknown; fail: (...a: any[]) => unknown }, p: Promise<unknown>): Promise<OpenStackError> {
  try {
    await p;
  } catch (err) {
    t.ok(err instanceof OpenStackError, 'an OpenStackError');
    return err as OpenStackError;
  }
  t.fail('expected a rejection');
  throw new Error('unreachable');
}

t.test('token cached, one token for concurrent callers, endpoint from the catalog', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/things', (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"things":[1]}'));
  const s = session(fake);
  t.teardown(() => s.close());
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => s.request<{ things: number[] }>('fake', '/things')));
  t.same(results.map((r) => r.body?.things), [[1], [1], [1], [1], [1]]);
  await s.request('fake', '/things');
  t.equal(fake.tokens, 1, 'one token request for six calls');
  t.equal(s.stats.tokenRequests, 1);
  t.equal(fake.lastToken, 'tok-1');
  t.equal(await s.endpoint('fake'), `${fake.url}/svc`, 'internal interface chosen, trailing slash dropped');
  t.same(s.tokenFacts?.roles, ['admin']);
});

t.test('token refreshed shortly before it expires (clock moved, no waiting)', async (t) => {
  const fake = await fakeCloud(t, { expiresInMs: 600_000 });
  fake.route('GET', '/svc/x', (_q, res) => res.writeHead(200).end('{}'));
  let offset = 0;
  const s = session(fake, { tokenRefreshMarginSeconds: 120 }, { now: () => Date.now() + offset });
  t.teardown(() => s.close());
  await s.request('fake', '/x');
  offset = 400_000; // 200 s left: outside the margin
  await s.request('fake', '/x');
  t.equal(fake.tokens, 1, 'still valid');
  offset = 500_000; // 100 s left: inside the 120 s margin
  await s.request('fake', '/x');
  t.equal(fake.tokens, 2, 're-authenticated before expiry');
});

t.test('401 from the service: one re-authentication, then success', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/x', (req, res) => {
    if (req.headers['x-auth-token'] === 'tok-1') res.writeHead(401).end('{"error":{"code":401,"title":"Unauthorized","message":"revoked"}}');
    else res.writeHead(200).end('{"ok":true}');
  });
  const s = session(fake);
  t.teardown(() => s.close());
  const res = await s.request<{ ok: boolean }>('fake', '/x');
  t.same(res.body, { ok: true });
  t.equal(fake.tokens, 2);
  t.equal(s.stats.reauthentications, 1);
});

t.test('401 twice: a typed auth error, no loop', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/x', (_q, res) => res.writeHead(401).end('{"error":{"code":401,"title":"Unauthorized","message":"nope"}}'));
  const s = session(fake);
  t.teardown(() => s.close());
  const err = await rejects(t, s.request('fake', '/x'));
  t.equal(err.kind, 'auth');
  t.equal(err.code, 'VTPM_ERR_AUTH');
  t.equal(err.status, 401);
  t.equal(fake.hits.get('GET /svc/x'), 2, 'tried exactly twice');
  t.equal(fake.tokens, 2);
});

t.test('wrong password: Keystone 401 is a typed auth error without the secret', async (t) => {
  const fake = await fakeCloud(t);
  const s = session(fake, {}, { password: 'wrong-secret-value' });
  t.teardown(() => s.close());
  const err = await rejects(t, s.request('fake', '/x'));
  t.equal(err.kind, 'auth');
  t.equal(err.service, 'identity');
  t.equal(err.detail, 'The request you have made requires authentication.');
  t.notMatch(err.message + JSON.stringify(err.toJSON()), /wrong-secret-value/);
  t.equal(s.stats.authFailures, 1);
  t.equal(fake.hits.get('POST /v3/auth/tokens'), 1, 'a refused password is not retried');
});

t.test('403 with a Placement error body: kind forbidden, detail parsed', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/x', (_q, res) =>
    res.writeHead(403).end('{"errors": [{"status": 403, "title": "Forbidden", "detail": "Policy does not allow placement:x to be performed.  ", "code": "placement.undefined_code", "request_id": "req-1"}]}'),
  );
  const s = session(fake);
  t.teardown(() => s.close());
  const err = await rejects(t, s.request('fake', '/x'));
  t.equal(err.kind, 'forbidden');
  t.equal(err.code, 'VTPM_ERR_FORBIDDEN');
  t.equal(err.detail, 'Policy does not allow placement:x to be performed.');
  t.equal(err.errorCode, 'placement.undefined_code');
  t.equal(fake.hits.get('GET /svc/x'), 1, '403 is not retried');
});

t.test('malformed JSON: typed bad-response', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/x', (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"traits": ['));
  const s = session(fake);
  t.teardown(() => s.close());
  const err = await rejects(t, s.request('fake', '/x'));
  t.equal(err.kind, 'bad-response');
  t.equal(err.code, 'VTPM_ERR_HTTP_BAD_RESPONSE');
  t.match(err.message, /not JSON/);
});

t.test('oversized body: refused by content-length and when streamed', async (t) => {
  const fake = await fakeCloud(t);
  const big = 'x'.repeat(70_000);
  fake.route('GET', '/svc/declared', (_q, res) => res.writeHead(200, { 'content-length': String(big.length) }).end(big));
  fake.route('GET', '/svc/chunked', (_q, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let i = 0; i < 10; i++) res.write(big.slice(0, 7000));
    res.end();
  });
  const s = session(fake, { maxResponseBytes: 65_536 });
  t.teardown(() => s.close());
  for (const path of ['/declared', '/chunked']) {
    const err = await rejects(t, s.request('fake', path));
    t.equal(err.kind, 'bad-response', path);
    t.match(err.message, /the 65536 (bytes )?allowed/);
  }
});

t.test('500: retried with backoff on GET, recovered; exhausted gives status error; POST not retried', async (t) => {
  const fake = await fakeCloud(t);
  let n = 0;
  fake.route('GET', '/svc/flaky', (_q, res) => (++n < 3 ? res.writeHead(500).end('oops') : res.writeHead(200).end('{"v":1}')));
  fake.route('GET', '/svc/down', (_q, res) => res.writeHead(503).end('{"errors":[{"status":503,"title":"Service Unavailable","detail":"db"}]}'));
  fake.route('POST', '/svc/down', (_q, res) => res.writeHead(500).end(''));
  const s = session(fake, { maxAttempts: 3 });
  t.teardown(() => s.close());
  t.same((await s.request('fake', '/flaky')).body, { v: 1 });
  t.equal(s.stats.retries, 2);
  const err = await rejects(t, s.request('fake', '/down'));
  t.equal(err.kind, 'status');
  t.equal(err.status, 503);
  t.equal(err.detail, 'db');
  t.equal(err.details.attempts, undefined, 'status errors are built after the last attempt');
  t.equal(fake.hits.get('GET /svc/down'), 3);
  await rejects(t, s.request('fake', '/down', { method: 'POST', json: {} }));
  t.equal(fake.hits.get('POST /svc/down'), 1, 'POST is not idempotent: no retry');
  t.ok(s.stats.byOutcome.get('fake GET 503') === 3);
});

t.test('a server that never answers: timeout', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/hang', () => undefined);
  const s = session(fake, { timeoutSeconds: 0.3, maxAttempts: 2 });
  t.teardown(() => s.close());
  const err = await rejects(t, s.request('fake', '/hang'));
  t.equal(err.kind, 'timeout');
  t.equal(err.code, 'VTPM_ERR_HTTP_TIMEOUT');
  t.equal(fake.hits.get('GET /svc/hang'), 2, 'retried once, then gave up');
});

t.test('connection refused: unreachable after retries', async (t) => {
  const fake = await fakeCloud(t);
  const s = session(fake, { maxAttempts: 2 });
  t.teardown(() => s.close());
  await s.token();
  await fake.close();
  const err = await rejects(t, s.request('fake', '/x'));
  t.equal(err.kind, 'unreachable');
  t.equal(err.details.attempts, 2);
  t.equal(s.stats.byOutcome.get('fake GET unreachable'), 2);
});

t.test('abort signal stops a request', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc/hang', () => undefined);
  const s = session(fake);
  t.teardown(() => s.close());
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const err = await rejects(t, s.request('fake', '/hang', { signal: ac.signal }));
  t.equal(err.kind, 'aborted');
});

t.test('microversion negotiation', async (t) => {
  const fake = await fakeCloud(t);
  fake.route('GET', '/svc', (_q, res) => res.writeHead(200).end('{"versions": [{"id": "v1.0", "max_version": "1.39", "min_version": "1.0", "status": "CURRENT"}]}'));
  const s = session(fake);
  t.teardown(() => s.close());
  t.equal(await s.negotiateMicroversion('fake', { min: '1.6', max: '1.36' }), '1.36', 'ours is lower: ours');
  s.forgetMicroversion('fake');
  t.equal(await s.negotiateMicroversion('fake', { min: '1.6', max: '1.40' }), '1.39', "theirs is lower: theirs");
  await s.negotiateMicroversion('fake', { min: '1.6', max: '1.40' });
  t.equal(fake.hits.get('GET /svc'), 2, 'cached');
  s.forgetMicroversion('fake');
  const err = await rejects(t, s.negotiateMicroversion('fake', { min: '1.40', max: '1.45' }));
  t.equal(err.kind, 'microversion');
  t.match(err.message, /offers at most 1.39/);
});

t.test('endpoint missing from the catalog', async (t) => {
  const fake = await fakeCloud(t);
  const s = session(fake);
  t.teardown(() => s.close());
  const err = await rejects(t, s.request('placement', '/x'));
  t.equal(err.kind, 'endpoint');
  t.match(err.message, /service type placement is not in the service catalog \(types: fake\)/);
});

t.test('pure helpers', async (t) => {
  t.equal(compareMicroversions('1.10', '1.9'), 1);
  t.equal(compareMicroversions('1.6', '1.6'), 0);
  t.same(parseVersionDocument({ version: { id: 'v1', version: '1.2', min_version: '1.0' } }), { min: '1.0', max: '1.2' });
  t.same(parseVersionDocument({ versions: { values: [{ id: 'v1', status: 'CURRENT', max_version: '1.1', min_version: '1.0' }] } }), { min: '1.0', max: '1.1' });
  t.equal(parseVersionDocument({ versions: [] }), null);
  t.equal(parseVersionDocument('junk'), null);
  t.same(parseErrorBody('{"code": 403, "title": "Forbidden", "description": "Secret retrieval attempt not allowed"}'), {
    errorCode: undefined,
    title: 'Forbidden',
    detail: 'Secret retrieval attempt not allowed',
    requestId: undefined,
  });
  t.same(parseErrorBody('<html>'), {});
  t.equal(tokensUrl('http://k:5000'), 'http://k:5000/v3/auth/tokens');
  t.equal(tokensUrl('http://k:5000/v3/'), 'http://k:5000/v3/auth/tokens');
  const body = JSON.parse(
    tokenRequestBody({
      source: 's',
      authUrl: 'http://k',
      method: { type: 'application_credential', name: 'ac', user: { name: 'u', domain: { name: 'Default' } }, secret: 'z' },
      scope: null,
      interface: 'internal',
      region: null,
      cacert: null,
      verify: true,
      warnings: [],
    }),
  );
  t.same(body, { auth: { identity: { methods: ['application_credential'], application_credential: { name: 'ac', user: { name: 'u', domain: { name: 'Default' } }, secret: 'z' } } } });
  const catalog = parseCatalog([{ type: 'placement', endpoints: [{ interface: 'internal', region_id: 'R1', url: 'http://a/' }, { interface: 'internal', region_id: 'R2', url: 'http://b' }] }, 'junk']);
  t.equal(findEndpoint(catalog, 'placement', 'internal', 'R2'), 'http://b');
  t.throws(() => findEndpoint(catalog, 'placement', 'public', null), /no placement \(public\) endpoint in the service catalog; it has: internal@R1, internal@R2/);
  const delays = [1, 2, 3, 4, 5, 6].map((a) => backoffDelay({ baseMs: 100, maxMs: 1000 }, a, () => 0.999));
  t.same(delays, [100, 200, 400, 800, 1000, 1000]);
  t.equal(backoffDelay({ baseMs: 100, maxMs: 1000 }, 3, () => 0), 200, 'jitter keeps at least half');
});
