import type { Registry } from 'prom-client';

/**
 * Serves the rendered exposition from memory: rendered at most once per `maxAgeMs` (and once at
 * a time — concurrent scrapes share one render). Scrapers poll every 15–60 s, so a value at most
 * a second old costs nothing in freshness and makes a scrape storm cheap.
 */
export class ExpositionCache {
  private body: string | undefined;
  private renderedAt = 0;
  private pending: Promise<string> | undefined;
  /** Renders actually performed (for tests and the bench). */
  renders = 0;

  constructor(
    private readonly registry: Registry,
    private readonly maxAgeMs = 1000,
  ) {}

  get contentType(): string {
    return this.registry.contentType;
  }

  async get(): Promise<string> {
    if (this.body !== undefined && performance.now() - this.renderedAt < this.maxAgeMs) return this.body;
    this.pending ??= this.registry
      .metrics()
      .then((body) => {
        this.body = body;
        this.renderedAt = performance.now();
        this.renders += 1;
        return body;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}
