import { gunzipSync } from 'node:zlib';
import { Gauge, Registry } from 'prom-client';
import t from 'tap';
import { acceptsGzip, ExpositionCache } from '../../src/reporter/exposition-cache.js';

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
