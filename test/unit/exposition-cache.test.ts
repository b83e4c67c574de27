import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import t from 'tap';
import { acceptsGzip, ExpositionCache } from '../../src/reporter/exposition-cache.js';
import { createServer, httpLimits } from '../../src/reporter/server.js';
import { defaultConfig } from '../../src/config/load.js';

t.test('Accept-Encoding: gzip when offered with a positive weight', async (t) => {
  for (const h of ['gzip', 'GZIP', 'deflate, gzip', 'gzip;q=0.5', 'br;q=1, gzip; q=0.1', '*']) t.ok(acceptsGzip(h), h);
  for (const h of [undefined, '', 'identity', 'deflate, br', 'gzip;q=0', 'gzip;q=0.0', 'gzipx']) t.notOk(acceptsGzip(h), String(h));
});

t.test('one render per max age, shared by concurrent scrapes; gzip made once per render', async (t) => {
  const registry = new Registry();
  const g = new Gauge({ name: 'test_value', help: 'a value', registers: [registry] });
  g.set(1);
  const cache = new ExpositionCache(registry, 60_000);
  const [a, b] = await Promise.all([cache.get(), cache.get()]);
  t.equal(cache.renders, 1);
  t.equal(a, b);
  t.match(a.body.toString(), /test_value 1/);
  const z1 = await a.gzipped();
  t.equal(await a.gzipped(), z1, 'compressed once');
  t.equal(gunzipSync(z1).toString(), a.body.toString());
  g.set(2);
  t.match((await cache.get()).body.toString(), /test_value 1/, 'still the cached render within max age');
  const fresh = new ExpositionCache(registry, 0);
  t.match((await fresh.get()).body.toString(), /test_value 2/);
});

t.test('/metrics: the render path (fastify) and the cached fast path answer alike', async (t) => {
  const registry = new Registry();
  new Gauge({ name: 'test_value', help: 'a value', registers: [registry] }).set(7);
  const cache = new ExpositionCache(registry, 60_000);
  const app = createServer({ metrics: cache, live: () => ({ ok: true, detail: {} }), ready: () => ({ ok: true, detail: {} }), status: () => ({}) }, pino({ level: 'silent' }), httpLimits(defaultConfig().web)).app;
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const get = (headers: Record<string, string> = {}, urlPath = '/metrics') =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      httpGet({ host: '127.0.0.1', port, path: urlPath, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
  const first = await get(); // nothing cached: rendered through fastify
  t.equal(cache.renders, 1);
  t.equal(cache.fastPathHits, 0, 'the first scrape went through fastify');
  const second = await get(); // cached: answered before routing
  t.equal(cache.renders, 1, 'no second render');
  t.equal(cache.fastPathHits, 1, 'the second scrape took the fast path');
  for (const r of [first, second]) {
    t.equal(r.status, 200);
    t.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    t.equal(r.headers.vary, 'accept-encoding');
    t.equal(r.headers['content-encoding'], undefined);
    t.match(r.body.toString(), /^test_value 7$/m);
  }
  const gz1 = await get({ 'accept-encoding': 'gzip' }); // gzip not made yet: through fastify
  t.equal(cache.fastPathHits, 1, 'gzip not made yet: through fastify');
  const gz2 = await get({ 'accept-encoding': 'gzip' }); // made: fast path
  t.equal(cache.fastPathHits, 2, 'gzip made: fast path');
  for (const r of [gz1, gz2]) {
    t.equal(r.headers['content-encoding'], 'gzip');
    t.equal(Number(r.headers['content-length'] ?? r.body.length), r.body.length);
    t.equal(gunzipSync(r.body).toString(), first.body.toString());
  }
  t.equal((await get({}, '/metrics?x=1')).status, 200, 'a query string goes through fastify and still works');
  t.equal((await get({}, '/healthz')).status, 200, 'other routes are fastify\'s');
  t.equal((await get({}, '/nope')).status, 404);
  t.equal(app.server.keepAliveTimeout, 72_000, "fastify's keep-alive kept with the custom server");
});
