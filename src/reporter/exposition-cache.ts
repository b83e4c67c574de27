import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Registry } from 'prom-client';

const gzipAsync = promisify(gzip);

/** One rendering of the registry, encoded once for every scrape that reads it. */
export interface Exposition {
  body: Buffer;
  /** The same body gzip-compressed (Prometheus asks for gzip), made on the first request for it. */
  gzipped(): Promise<Buffer>;
  /** The gzip body once made (undefined before): lets a scrape be answered without waiting. */
  gzippedNow(): Buffer | undefined;
}

/**
 * Serves the rendered exposition from memory: rendered at most once per `maxAgeMs` (and once at
 * a time — concurrent scrapes share one render). Scrapers poll every 15–60 s, so a value at most
 * a second old costs nothing in freshness and makes a scrape storm cheap. The body is kept as
 * bytes (and gzip on demand), so a scrape does no encoding work at all.
 */
export class ExpositionCache {
  private current: Exposition | undefined;
  private renderedAt = 0;
  private pending: Promise<Exposition> | undefined;
  /** Renders actually performed (for tests and the bench). */
  renders = 0;
  /** Scrapes answered from the cache before routing (the server's fast path; for tests and the bench). */
  fastPathHits = 0;

  constructor(
    private readonly registry: Registry,
    private readonly maxAgeMs = 1000,
  ) {}

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The cached exposition when it is fresh enough to serve as it is; undefined when a render is due. */
  fresh(): Exposition | undefined {
    return this.current !== undefined && performance.now() - this.renderedAt < this.maxAgeMs ? this.current : undefined;
  }

  async get(): Promise<Exposition> {
    if (this.current !== undefined && performance.now() - this.renderedAt < this.maxAgeMs) return this.current;
    this.pending ??= this.registry
      .metrics()
      .then((text) => {
        const body = Buffer.from(text, 'utf8');
        let gz: Promise<Buffer> | undefined;
        let gzDone: Buffer | undefined;
        this.current = {
          body,
          gzipped: () => (gz ??= gzipAsync(body, { level: 6 }).then((b) => (gzDone = b))),
          gzippedNow: () => gzDone,
        };
        this.renderedAt = performance.now();
        this.renders += 1;
        return this.current;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

/** Whether an Accept-Encoding header admits gzip (`gzip`, `gzip;q=0.5`, `*`; not `gzip;q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}
