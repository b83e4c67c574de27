/**
 * checkSecret against a fake Keystone + Barbican over HTTPS with a self-signed certificate: the
 * payload request must go through the session's dispatcher (CA bundle / verify), cap the body
 * and never quote it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t from 'tap';
import { checkSecret } from '../../src/barbican/client.js';
import { openstackConfigSchema } from '../../src/openstack/config.js';
import type { ResolvedCloud } from '../../src/openstack/credentials.js';
import { OpenStackSession } from '../../src/openstack/session.js';

const SECRET = 'aaaaaaaa-0000-4000-8000-000000000001';
const PAYLOAD_MARK = 'TOP-SECRET-PAYLOAD-BYTES';

interface Fake {
  url: string;
  cert: string;
  payload: { status: number; body: Buffer };
  payloadHits: number;
}

async function fakeBarbican(t: { teardown(fn: () => unknown): void }): Promise<Fake> {
  const dir = mkdtempSync(path.join(tmpdir(), 'vtpm-barbican-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const fake: Fake = { url: '', cert, payload: { status: 200, body: Buffer.from(PAYLOAD_MARK) }, payloadHits: 0 };
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v3/auth/tokens') {
        const now = Date.now();
        res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': 'tok' }).end(
          JSON.stringify({
            token: {
              expires_at: new Date(now + 3600_000).toISOString(),
              issued_at: new Date(now).toISOString(),
              roles: [{ id: 'r', name: 'service' }],
              user: { id: 'u1' },
              project: { id: 'p1' },
              catalog: [{ type: 'key-manager', name: 'barbican', endpoints: [{ interface: 'internal', region_id: 'RegionOne', url: `${fake.url}/kms` }] }],
            },
          }),
        );
        return;
      }
      if (req.url === `/kms/v1/secrets/${SECRET}`) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ACTIVE"}');
        return;
      }
      if (req.url === `/kms/v1/secrets/${SECRET}/payload`) {
        fake.payloadHits += 1;
        res.writeHead(fake.payload.status, { 'content-type': 'application/octet-stream' }).end(fake.payload.body);
        return;
      }
      res.writeHead(404).end();
    });
  });
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('connection', (s: import('node:stream').Duplex) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return fake;
}

function session(t: { teardown(fn: () => unknown): void }, fake: Fake, tls: { cacert: string | null; verify: boolean }): OpenStackSession {
  const cloud: ResolvedCloud = {
    source: 'test',
    authUrl: `${fake.url}/v3`,
    method: { type: 'password', user: { name: 'nova', domain: { id: 'default' } }, password: 'pw' },
    scope: { id: 'p1' },
    interface: 'internal',
    region: null,
    warnings: [],
    ...tls,
  };
  const s = new OpenStackSession({ cloud, config: openstackConfigSchema.parse({ timeoutSeconds: 5, maxAttempts: 1 }), log: pino({ level: 'silent' }) });
  t.teardown(() => s.close());
  return s;
}

t.test('the payload check uses the session TLS settings (verify off, then a CA bundle)', async (t) => {
  const fake = await fakeBarbican(t);
  for (const tls of [{ cacert: null, verify: false }, { cacert: fake.cert, verify: true }]) {
    const r = await checkSecret(session(t, fake, tls), SECRET, { payload: true, timeoutMs: 5000 });
    t.same(r, { result: 'ok', reason: null, detail: 'metadata and payload readable', payloadChecked: true }, JSON.stringify(tls));
  }
  t.equal(fake.payloadHits, 2);
  // Verification on without the CA: refused before any request, as for every other call.
  const refused = await checkSecret(session(t, fake, { cacert: null, verify: true }), SECRET, { payload: true, timeoutMs: 5000 });
  t.equal(refused.result, 'unavailable');
  t.equal(fake.payloadHits, 2);
});

t.test('the payload body is capped and never quoted', async (t) => {
  const fake = await fakeBarbican(t);
  const s = session(t, fake, { cacert: fake.cert, verify: true });
  fake.payload = { status: 500, body: Buffer.from(`${PAYLOAD_MARK} in an error page`) };
  const err = await checkSecret(s, SECRET, { payload: true, timeoutMs: 5000 });
  t.same(err, { result: 'unavailable', reason: 'unavailable', detail: 'GET secret payload: HTTP 500', payloadChecked: true });
  fake.payload = { status: 403, body: Buffer.from(PAYLOAD_MARK) };
  t.equal((await checkSecret(s, SECRET, { payload: true, timeoutMs: 5000 })).result, 'forbidden');
  fake.payload = { status: 200, body: Buffer.alloc(1024 * 1024, PAYLOAD_MARK) };
  const big = await checkSecret(s, SECRET, { payload: true, timeoutMs: 5000 });
  t.equal(big.result, 'unavailable', 'a body over the cap is not read to its end');
  t.match(big.detail, /more than the 65536 bytes allowed/);
  t.notMatch(big.detail, PAYLOAD_MARK);
  t.notMatch(err.detail, PAYLOAD_MARK);
});
