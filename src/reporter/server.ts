import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { createServer as createHttpServer, type IncomingMessage, type ServerOptions as HttpServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as NetServer } from 'node:net';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import { BasicAuth, parseBasicAuth } from './basic-auth.js';
import { ConnectionGuard } from './connection-guard.js';
import { acceptsGzip, type ExpositionCache } from './exposition-cache.js';
import { redactTenantData } from './tenant-data.js';
import type { TlsSettings, WebConfig } from './web-config.js';

export interface ServerSources {
  metrics: ExpositionCache;
  /** Liveness: the process and its scheduler are alive (not: libvirt is up). */
  live(): { ok: boolean; detail: Record<string, unknown> };
  /** Readiness: the first probe cycle has completed, with per-check detail. */
  ready(): { ok: boolean; detail: Record<string, unknown> };
  status(): unknown;
}

/** The `web` section of the agent configuration, in milliseconds and bytes. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxHeaderBytes: number;
  maxPipelined: number;
}

export interface AgentServer {
  app: FastifyInstance;
  guard: ConnectionGuard;
  auth: BasicAuth;
  /** Applies a re-read web configuration to the running listener; returns why not, or null. */
  applyWebConfig(web: WebConfig): string | null;
}

/** Paths served to anyone: liveness and readiness probes (kubelet, systemd) carry no credentials and no tenant data. */
const OPEN_PATHS = new Set(['/healthz', '/readyz']);
/** Set on the request by the front handler: whether this client may see tenant data. */
const SEES_TENANT_DATA = Symbol('vtpm.seesTenantData');

function tlsServerOptions(tls: TlsSettings, handshakeTimeoutMs: number): TlsOptions {
  return {
    ...tls.context,
    requestCert: tls.clientAuth !== 'NoClientCert',
    rejectUnauthorized: tls.clientAuth === 'RequireAndVerifyClientCert',
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/** The SAN entries of a peer certificate (`DNS:a, IP Address:1.2.3.4, email:…, URI:…`) as bare values. */
function sanValues(altNames: string | undefined): string[] {
  return (altNames ?? '').split(/,\s*/).map((s) => s.slice(s.indexOf(':') + 1)).filter(Boolean);
}

/** Whether the TLS client passes the client_auth_type policy Node's options cannot express alone. */
function clientCertAcceptable(socket: TLSSocket, tls: TlsSettings): boolean {
  if (tls.clientAuth === 'NoClientCert' || tls.clientAuth === 'RequestClientCert') return true;
  const cert = socket.getPeerCertificate();
  const presented = cert !== null && Object.keys(cert).length > 0;
  if (tls.clientAuth === 'VerifyClientCertIfGiven') return !presented || socket.authorized;
  if (!presented || (tls.clientAuth === 'RequireAndVerifyClientCert' && !socket.authorized)) return false;
  if (tls.allowedSans.length === 0) return true;
  const sans = sanValues(cert.subjectaltname);
  return tls.allowedSans.some((allowed) => sans.includes(allowed));
}

/** A token bucket (exporter-toolkit's rate_limit): `burst` requests at once, one more every interval. */
class TokenBucket {
  private tokens: number;
  private last = performance.now();
  constructor(private readonly limit: { intervalMs: number; burst: number }) {
    this.tokens = limit.burst;
  }
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + (now - this.last) / this.limit.intervalMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function refuse(res: ServerResponse, code: number, message: string, headers: Record<string, string> = {}, close = true): void {
  // Close after refusing: a body the client meant to send is never read.
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', ...(close ? { connection: 'close' } : {}), ...headers });
  res.end(`${message}\n`);
}

/**
 * /metrics, /healthz, /readyz, /status — every handler reads memory only. With a web
 * configuration: TLS (certificates swapped in place on reload), basic auth, client-certificate
 * policy and response headers, as exporter-toolkit. Always: the connection guard (headers
 * timeout, connection cap that sheds slow and idle sockets first) and no request bodies.
 */
export function createServer(sources: ServerSources, log: Logger, limits: HttpLimits, initialWeb: WebConfig | null = null): AgentServer {
  let web = initialWeb;
  const auth = new BasicAuth(web?.users ?? new Map());
  let bucket = web?.rateLimit ? new TokenBucket(web.rateLimit) : null;
  const guard = new ConnectionGuard(limits);
  const metricHeaders = (gzip: boolean) => ({ 'content-type': sources.metrics.contentType, vary: 'accept-encoding', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  let netServer: NetServer | undefined;

  // Runs before routing for every request: limits, auth, headers, then the /metrics fast path
  // (a fresh cached exposition written from memory), else fastify.
  const front = async (req: IncomingMessage, res: ServerResponse, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> => {
    const done = guard.requestStarted(req.socket);
    if (!done) return;
    res.once('close', done);
    for (const [name, value] of Object.entries(web?.headers ?? {})) res.setHeader(name, value);
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    if ((req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined) {
      return refuse(res, 413, 'request bodies are not accepted');
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const verifiedCert = web?.tls?.clientAuth === 'RequireAndVerifyClientCert' && (req.socket as TLSSocket).authorized === true;
    if (!OPEN_PATHS.has(path)) {
      if (bucket && !bucket.take()) return refuse(res, 429, 'too many requests', {}, false);
      if (auth.enabled && !(await auth.check(parseBasicAuth(req.headers.authorization)))) {
        return refuse(res, 401, 'Unauthorized', { 'www-authenticate': 'Basic' }, false);
      }
    }
    // Tenant data only to a client that authenticated (basic auth passed above, or a verified client certificate).
    (req as unknown as Record<symbol, boolean>)[SEES_TENANT_DATA] = auth.enabled || verifiedCert;
    if (req.method === 'GET' && path === '/metrics' && req.url === '/metrics') {
      const exposition = sources.metrics.fresh();
      const gzip = acceptsGzip(req.headers['accept-encoding']);
      const body = exposition && (gzip ? exposition.gzippedNow() : exposition.body);
      if (body) {
        sources.metrics.fastPathHits += 1;
        res.writeHead(200, { ...metricHeaders(gzip), 'content-length': body.length });
        res.end(body);
        return;
      }
    }
    handler(req, res);
  };

  const serverFactory = (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      front(req, res, handler).catch((err: unknown) => {
        log.warn({ err }, 'request failed before routing');
        if (!res.headersSent) refuse(res, 500, 'internal error');
        else res.destroy();
      });
    };
    const httpOptions: HttpServerOptions = {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // How often Node checks the two timeouts above (its default, 30 s, would let them overrun).
      connectionsCheckingInterval: 1000,
    };
    const tls = web?.tls;
    const server = tls ? createHttpsServer({ ...httpOptions, ...tlsServerOptions(tls, limits.headersTimeoutMs) }, onRequest) : createHttpServer(httpOptions, onRequest);
    // Expect: 100-continue would otherwise be answered "continue" before the body is refused.
    server.on('checkContinue', onRequest);
    if (tls) {
      server.on('secureConnection', (socket: TLSSocket) => {
        const current = web?.tls;
        if (current && !clientCertAcceptable(socket, current)) socket.destroy();
      });
      server.on('tlsClientError', (err: Error & { code?: string }) => log.debug({ err: err.message, code: err.code }, 'TLS handshake refused'));
    }
    guard.attach(server);
    netServer = server;
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
    reply.headers(metricHeaders(gzip));
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
  app.get('/status', async (req) => {
    const report = sources.status();
    return (req.raw as unknown as Record<symbol, boolean>)[SEES_TENANT_DATA] ? report : redactTenantData(report);
  });
  app.get('/', async (_req, reply) =>
    reply.type('text/html').send('<html><body><h1>vtpm-agent</h1><ul><li><a href="/metrics">/metrics</a></li><li><a href="/status">/status</a></li><li><a href="/healthz">/healthz</a></li><li><a href="/readyz">/readyz</a></li></ul></body></html>'),
  );

  const applyWebConfig = (next: WebConfig): string | null => {
    if (Boolean(next.tls) !== Boolean(web?.tls)) return `switching between HTTP and HTTPS needs a restart (the listener is ${web?.tls ? 'HTTPS' : 'plain HTTP'})`;
    if (next.tls && netServer && 'setSecureContext' in netServer) {
      // New certificates for new handshakes; open connections keep theirs: nothing is dropped.
      const options = tlsServerOptions(next.tls, limits.headersTimeoutMs);
      const tlsServer = netServer as unknown as { setSecureContext(o: TlsOptions): void; requestCert: boolean; rejectUnauthorized: boolean };
      tlsServer.setSecureContext(options);
      // setSecureContext leaves these as the constructor set them; each new TLS socket reads them
      // from the server, so a changed client_auth_type applies to new connections too.
      tlsServer.requestCert = options.requestCert === true;
      tlsServer.rejectUnauthorized = options.rejectUnauthorized === true;
    }
    auth.replaceUsers(next.users);
    bucket = next.rateLimit ? new TokenBucket(next.rateLimit) : null;
    web = next;
    return null;
  };
  return { app, guard, auth, applyWebConfig };
}

export function httpLimits(web: { headersTimeoutSeconds: number; requestTimeoutSeconds: number; keepAliveTimeoutSeconds: number; maxConnections: number; maxHeaderBytes: number; maxPipelinedRequests: number }): HttpLimits {
  return {
    headersTimeoutMs: web.headersTimeoutSeconds * 1000,
    requestTimeoutMs: web.requestTimeoutSeconds * 1000,
    keepAliveTimeoutMs: web.keepAliveTimeoutSeconds * 1000,
    maxConnections: web.maxConnections,
    maxHeaderBytes: web.maxHeaderBytes,
    maxPipelined: web.maxPipelinedRequests,
  };
}
