import { copyFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { defaultConfig } from '../../src/config/load.js';
import { BasicAuth, parseBasicAuth } from '../../src/reporter/basic-auth.js';
import { ExpositionCache } from '../../src/reporter/exposition-cache.js';
import { createServer, httpLimits } from '../../src/reporter/server.js';
import { REDACTED, redactTenantData } from '../../src/reporter/tenant-data.js';
import { loadWebConfig, WebConfigError } from '../../src/reporter/web-config.js';
import { WebConfigWatcher } from '../../src/reporter/web-config-watch.js';
import { bcryptHash, makePki, writeWebConfig } from '../harness/tls.js';

const pki = makePki();
t.teardown(() => pki.cleanup());
const server = pki.issue('server', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
const client = pki.issue('client', { cn: 'prometheus', san: 'DNS:prometheus.example', client: true });
const file = (name: string) => path.join(pki.dir, name);

t.test('a node_exporter web config loads unchanged', async (t) => {
  const p = writeWebConfig(file('full.yml'), {
    tls_server_config: {
      cert_file: server.cert,
      key_file: server.key,
      client_auth_type: 'RequireAndVerifyClientCert',
      client_ca_file: pki.caCert,
      min_version: 'TLS12',
      max_version: 'TLS13',
      cipher_suites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256'],
      prefer_server_cipher_suites: true,
      curve_preferences: ['CurveP256', 'X25519'],
      client_allowed_sans: ['prometheus.example'],
    },
    http_server_config: { http2: true, headers: { 'Strict-Transport-Security': 'max-age=31536000', 'X-Frame-Options': 'deny', 'X-Content-Type-Options': 'nosniff' } },
    basic_auth_users: { prometheus: bcryptHash('s3cret') },
    rate_limit: { interval: '1s', burst: 20 },
  });
  const web = await loadWebConfig(p);
  t.equal(web.tls?.clientAuth, 'RequireAndVerifyClientCert');
  t.equal(web.tls?.context.minVersion, 'TLSv1.2');
  t.equal(web.tls?.context.ciphers, 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384', 'Go names mapped to OpenSSL; TLS 1.3 suites not constraining');
  t.equal(web.tls?.context.ecdhCurve, 'P-256:X25519');
  t.same(web.headers, { 'Strict-Transport-Security': 'max-age=31536000', 'X-Frame-Options': 'deny', 'X-Content-Type-Options': 'nosniff' });
  t.equal(web.users.size, 1);
  t.same(web.rateLimit, { intervalMs: 1000, burst: 20 });
  t.same(web.files, [p, server.cert, server.key, pki.caCert], 'every file it names is watched');
  const plain = await loadWebConfig(writeWebConfig(file('auth-only.yml'), { basic_auth_users: { a: bcryptHash('b') } }));
  t.equal(plain.tls, null, 'no certificate: plain HTTP, as exporter-toolkit');
});

t.test('invalid web configs name each bad field', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['cert without key', { tls_server_config: { cert_file: server.cert } }, /tls_server_config\.key_file: missing key_file/],
    ['CA without policy', { tls_server_config: { cert_file: server.cert, key_file: server.key, client_ca_file: pki.caCert } }, /client_auth_type: client CA configured without a client auth policy/],
    ['unknown cipher', { tls_server_config: { cert_file: server.cert, key_file: server.key, cipher_suites: ['RC4'] } }, /cipher_suites\.0: unknown cipher suite "RC4"/],
    ['min above max', { tls_server_config: { cert_file: server.cert, key_file: server.key, min_version: 'TLS13', max_version: 'TLS12' } }, /max_version: max_version TLS12 is below min_version TLS13/],
    ['unreadable cert', { tls_server_config: { cert_file: '/nonexistent/tls.crt', key_file: server.key } }, /tls_server_config\.cert_file: cannot read \/nonexistent\/tls\.crt: ENOENT/],
    ['key of another cert', { tls_server_config: { cert_file: server.cert, key_file: client.key } }, /cert_file\/key_file cannot be used: .*(mismatch|values)/i],
    ['plain password', { basic_auth_users: { alice: 'hunter2' } }, /basic_auth_users\.alice: must be a bcrypt hash/],
    ['unknown key', { tls_config: {} }, /\(root\): unknown key\(s\) "tls_config"/],
    ['bad duration', { rate_limit: { interval: 'soon', burst: 1 } }, /rate_limit\.interval: must be a duration/],
  ];
  for (const [name, config, expected] of cases) {
    const p = writeWebConfig(file(`bad-${name.replace(/\W/g, '_')}.yml`), config as Record<string, unknown>);
    const err = await loadWebConfig(p).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof WebConfigError, `${name}: a configuration error (exit 78)`);
    t.match((err as Error).message, expected, name);
  }
  writeFileSync(file('notyaml.yml'), 'tls_server_config: [\n');
  t.match(await loadWebConfig(file('notyaml.yml')).catch((e: Error) => e.message), /not valid YAML/);
});

t.test('basic auth: bcrypt once per credential, then cached; wrong and unknown refused', async (t) => {
  const auth = new BasicAuth(new Map([['prometheus', bcryptHash('s3cret')]]));
  t.same(parseBasicAuth(`Basic ${Buffer.from('prometheus:s3:cret').toString('base64')}`), { user: 'prometheus', password: 's3:cret' });
  t.equal(parseBasicAuth('Bearer x'), undefined);
  const good = { user: 'prometheus', password: 's3cret' };
  t.equal(await auth.check(good), true);
  t.equal(await auth.check(good), true);
  t.equal(auth.comparisons, 1, 'the second check is answered from the cache');
  t.equal(await auth.check({ user: 'prometheus', password: 'wrong' }), false);
  t.equal(await auth.check({ user: 'mallory', password: 's3cret' }), false);
  t.equal(await auth.check(undefined), false);
  auth.replaceUsers(new Map([['prometheus', bcryptHash('new')]]));
  t.equal(await auth.check(good), false, 'a reload with a new hash invalidates the cache');
});

t.test('tenant data is redacted wherever its values occur', async (t) => {
  const secret = '0b2c1d3e-1111-4222-8333-944445555666';
  const doc = {
    sections: [
      {
        summary: `secret ${secret} not readable by Nova`,
        table: [['instance', 'secret'], ['9c6e…', secret]],
        data: { guests: [{ uuid: 'u1', name: 'instance-00000001', encryptionSecret: secret, nova: { projectId: 'p-123456', projectName: 'acme-prod', userId: 'u-998877', instanceName: 'db-primary' } }], secrets: [{ uuid: secret, usageType: 'vtpm', usageName: 'VTPM_secret' }] },
      },
    ],
  };
  const out = JSON.stringify(redactTenantData(doc));
  for (const v of [secret, 'acme-prod', 'p-123456', 'u-998877', 'db-primary', 'VTPM_secret']) t.notOk(out.includes(v), `${v} removed`);
  t.ok(out.includes('instance-00000001') && out.includes('"u1"'), 'domain name and UUID stay');
  t.ok(out.includes(REDACTED));
});

interface Reply {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

t.test('HTTPS server: client certificate, basic auth, headers, redaction, rotation without dropping the listener', async (t) => {
  const users = { prometheus: bcryptHash('s3cret') };
  const cfgPath = writeWebConfig(file('serve.yml'), {
    tls_server_config: { cert_file: file('live.crt'), key_file: file('live.key'), client_auth_type: 'VerifyClientCertIfGiven', client_ca_file: pki.caCert },
    http_server_config: { headers: { 'X-Content-Type-Options': 'nosniff' } },
    basic_auth_users: users,
  });
  copyFileSync(server.cert, file('live.crt'));
  copyFileSync(server.key, file('live.key'));
  const web = await loadWebConfig(cfgPath);
  const status = { sections: [{ data: { nova: { projectName: 'acme-prod' } } }] };
  const srv = createServer(
    { metrics: new ExpositionCache(new Registry()), live: () => ({ ok: true, detail: {} }), ready: () => ({ ok: true, detail: {} }), status: () => status },
    pino({ level: 'silent' }),
    httpLimits(defaultConfig().web),
    web,
  );
  t.teardown(() => srv.app.close());
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = srv.app.server.address() as AddressInfo;
  const ca = readFileSync(pki.caCert);
  const get = (urlPath: string, opts: { auth?: string; cert?: { cert: string; key: string }; method?: string; body?: string } = {}) =>
    new Promise<Reply & { peerSerial: string }>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path: urlPath, method: opts.method ?? 'GET', ca, agent: false, auth: opts.auth, headers: opts.body ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}, ...(opts.cert ? { cert: readFileSync(opts.cert.cert), key: readFileSync(opts.cert.key) } : {}) },
        (res) => {
          let body = '';
          const peerSerial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, peerSerial }));
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });
  t.equal((await get('/metrics')).status, 401, 'no credentials: 401');
  t.equal((await get('/metrics', { auth: 'prometheus:wrong' })).status, 401, 'wrong password: 401');
  const ok = await get('/metrics', { auth: 'prometheus:s3cret' });
  t.equal(ok.status, 200);
  t.equal(ok.headers['x-content-type-options'], 'nosniff', 'configured headers on every response');
  t.equal((await get('/healthz')).status, 200, '/healthz is open (liveness probes carry no credentials)');
  t.match((await get('/status', { auth: 'prometheus:s3cret' })).body, /acme-prod/, 'authenticated: tenant data');
  t.equal((await get('/status')).status, 401, 'anonymous: no /status at all');
  t.equal((await get('/status', { method: 'POST', body: 'x'.repeat(1000), auth: 'prometheus:s3cret' })).status, 405);
  const bodyGet = await get('/metrics', { body: 'x'.repeat(1000), auth: 'prometheus:s3cret' });
  t.equal(bodyGet.status, 413, 'a body is refused before it is read');
  t.equal((await get('/metrics', { auth: 'prometheus:s3cret', cert: client })).status, 200, 'a verified client certificate is accepted');
  const stranger = makePki('vtpmtest-pki-stranger-');
  t.teardown(() => stranger.cleanup());
  const foreign = stranger.issue('foreign', { cn: 'x', client: true });
  await t.rejects(get('/metrics', { auth: 'prometheus:s3cret', cert: foreign }), 'a certificate from another CA is refused (VerifyClientCertIfGiven)');

  // Rotation: a new certificate written over the old one is served to new connections.
  const watcher = new WebConfigWatcher(web, (next) => srv.applyWebConfig(next), pino({ level: 'silent' }));
  await watcher.start();
  t.teardown(() => watcher.stop());
  const before = ok.peerSerial;
  const rotated = pki.issue('rotated', { cn: '127.0.0.1', san: 'IP:127.0.0.1' });
  copyFileSync(rotated.key, file('live.key.new'));
  copyFileSync(rotated.cert, file('live.crt.new'));
  // Half-rotated (new cert, old key) is rejected and the old one stays.
  copyFileSync(file('live.crt.new'), file('live.crt'));
  await watcher.reload('test');
  t.equal(watcher.rejected, 1, 'a certificate without its key is not applied');
  t.equal((await get('/metrics', { auth: 'prometheus:s3cret' })).peerSerial, before, 'the old certificate is still served');
  copyFileSync(file('live.key.new'), file('live.key'));
  await watcher.reload('test');
  t.equal(watcher.applied, 1);
  const after = await get('/metrics', { auth: 'prometheus:s3cret' });
  t.equal(after.status, 200);
  t.not(after.peerSerial, before, 'the rotated certificate is served on the same listener');
});

t.test('client_auth_type changed by a reload applies to new connections, both ways', async (t) => {
  copyFileSync(server.cert, file('auth.crt'));
  copyFileSync(server.key, file('auth.key'));
  const cfgPath = file('auth.yml');
  const withClientAuth = (clientAuth: string) =>
    writeWebConfig(cfgPath, { tls_server_config: { cert_file: file('auth.crt'), key_file: file('auth.key'), client_auth_type: clientAuth, ...(clientAuth === 'NoClientCert' ? {} : { client_ca_file: pki.caCert }) } });
  withClientAuth('NoClientCert');
  const web = await loadWebConfig(cfgPath);
  const srv = createServer(
    { metrics: new ExpositionCache(new Registry()), live: () => ({ ok: true, detail: {} }), ready: () => ({ ok: true, detail: {} }), status: () => ({}) },
    pino({ level: 'silent' }),
    httpLimits(defaultConfig().web),
    web,
  );
  t.teardown(() => srv.app.close());
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = srv.app.server.address() as AddressInfo;
  const ca = readFileSync(pki.caCert);
  const status = (cert?: { cert: string; key: string }) =>
    new Promise<number>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/metrics', ca, agent: false, ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  const watcher = new WebConfigWatcher(web, (next) => srv.applyWebConfig(next), pino({ level: 'silent' }));
  await watcher.start();
  t.teardown(() => watcher.stop());
  t.equal(await status(), 200, 'NoClientCert: served without a certificate');

  withClientAuth('RequireAndVerifyClientCert');
  await watcher.reload('test');
  t.equal(watcher.applied, 1);
  t.equal(await status(client), 200, 'now required: the certificate is asked for and accepted');
  await t.rejects(status(), 'now required: a client without a certificate is refused');

  withClientAuth('NoClientCert');
  await watcher.reload('test');
  t.equal(watcher.applied, 2);
  t.equal(await status(), 200, 'back to NoClientCert: a client without a certificate is served again');
});

t.test('plain HTTP without auth: /status is redacted; slow and idle sockets are closed within the headers timeout', async (t) => {
  const status = { sections: [{ data: { nova: { projectName: 'acme-prod' } } }] };
  const limits = { ...httpLimits(defaultConfig().web), headersTimeoutMs: 500, maxConnections: 8 };
  const srv = createServer(
    { metrics: new ExpositionCache(new Registry()), live: () => ({ ok: true, detail: {} }), ready: () => ({ ok: true, detail: {} }), status: () => status },
    pino({ level: 'silent' }),
    limits,
  );
  t.teardown(() => srv.app.close());
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = srv.app.server.address() as AddressInfo;
  const body = await (await fetch(`http://127.0.0.1:${port}/status`)).text();
  t.notMatch(body, /acme-prod/, 'no web config with auth: tenant fields left out');
  t.match(body, /\[redacted\]/);
  const slow = Array.from({ length: 20 }, () => netConnect(port, '127.0.0.1'));
  const closedAt = slow.map((s) => new Promise<number>((resolve) => s.on('close', () => resolve(Date.now()))));
  for (const s of slow) s.on('error', () => undefined);
  const started = Date.now();
  const trickle = setInterval(() => slow[0]!.write('X'), 100);
  slow[0]!.write('GET /metrics HTTP/1.1\r\n');
  const healthz = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
  t.equal(healthz.status, 200, '/healthz served with the connection cap full of slow sockets');
  const closed = await Promise.all(closedAt);
  clearInterval(trickle);
  t.ok(Math.max(...closed) - started < 500 + 1500, `every slow socket closed within the headers timeout (last after ${Math.max(...closed) - started} ms)`);
  t.ok(srv.guard.counters.shed >= 12, `sockets over the cap were shed (${srv.guard.counters.shed})`);
});
