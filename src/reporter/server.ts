import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { acceptsGzip, type ExpositionCache } from './exposition-cache.js';

export interface ServerSources {
  metrics: ExpositionCache;
  /** Liveness: the process and its scheduler are alive (not: libvirt is up). */
  live(): { ok: boolean; detail: Record<string, unknown> };
  /** Readiness: the first probe cycle has completed, with per-check detail. */
  ready(): { ok: boolean; detail: Record<string, unknown> };
  status(): unknown;
}

/** /metrics, /healthz, /readyz, /status — every handler reads memory only. */
export function createServer(sources: ServerSources, log: Logger): FastifyInstance {
  // The hot path: a scrape of a fresh cached exposition is answered before routing (a write of
  // bytes already in memory); everything else, and a scrape that needs a render, goes to fastify.
  const headers = (gzip: boolean) => ({ 'content-type': sources.metrics.contentType, vary: 'accept-encoding', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  const serverFactory = (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createHttpServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics') {
        const exposition = sources.metrics.fresh();
        const gzip = acceptsGzip(req.headers['accept-encoding']);
        const body = exposition && (gzip ? exposition.gzippedNow() : exposition.body);
        if (body) {
          sources.metrics.fastPathHits += 1;
          res.writeHead(200, { ...headers(gzip), 'content-length': body.length });
          res.end(body);
          return;
        }
      }
      handler(req, res);
    });
    // With a serverFactory fastify no longer applies its own server settings: keep its keep-alive
    // (72 s, longer than any scrape interval, so Prometheus reuses connections).
    server.keepAliveTimeout = 72_000;
    return server;
  };
  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    serverFactory,
  });
  app.get('/metrics', async (req, reply) => {
    const exposition = await sources.metrics.get();
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    reply.headers(headers(gzip));
    if (gzip) return reply.send(await exposition.gzipped());
    return reply.send(exposition.body);
  });
  app.get('/healthz', async (_req, reply) => {
    const { ok, detail } = sources.live();
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unhealthy', ...detail });
  });
  app.get('/readyz', async (_req, reply) => {
    const { ok, detail } = sources.ready();
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', ...detail });
  });
  app.get('/status', async () => sources.status());
  app.get('/', async (_req, reply) =>
    reply.type('text/html').send('<html><body><h1>vtpm-agent</h1><ul><li><a href="/metrics">/metrics</a></li><li><a href="/status">/status</a></li><li><a href="/healthz">/healthz</a></li><li><a href="/readyz">/readyz</a></li></ul></body></html>'),
  );
  return app;
}
