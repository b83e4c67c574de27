import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusClient } from '../../src/fleet/prometheus.js';

t.test('an answer over the size cap is refused, also without Content-Length', async (t) => {
  let written = 0;
  const server = createServer((_req, res) => {
    // Chunked (no Content-Length): 65 MiB of noise (the cap is 64 MiB), written as long as the client reads.
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const write = () => {
      while (written < 65 * 1024 * 1024) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', write);
      }
      res.end();
    };
    res.on('close', () => (written = Number.POSITIVE_INFINITY));
    write();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const client = new PrometheusClient(`http://127.0.0.1:${port}`, 10_000);
  await t.rejects(client.query('up'), { code: 'VTPM_ERR_PROMETHEUS_QUERY', message: /over the \d+-byte limit/ });
});

t.test('a URL that does not parse is not echoed with its credentials', async (t) => {
  let err: (Error & { details?: unknown }) | undefined;
  try {
    new PrometheusClient('http://admin:hunter2@prom:bad port', 1000);
  } catch (e) {
    err = e as Error & { details?: unknown };
  }
  t.match(err?.message, /is not a URL/);
  t.notMatch(`${err?.message} ${JSON.stringify(err?.details)}`, /hunter2/, 'the password is in neither the message nor the details');
});
