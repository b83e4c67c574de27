/**
 * An authenticated OpenStack session: a Keystone token cached until shortly before it expires,
 * endpoints from the catalog by service type, microversion negotiation, and requests with
 * timeouts, retries (backoff + jitter) for connection errors and 5xx on idempotent methods, one
 * re-authentication on 401, and typed errors. One session per consumer; safe for concurrent use.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { backoffDelay, sleep } from './backoff.js';
import { findEndpoint } from './catalog.js';
import type { OpenStackConfig } from './config.js';
import { describeCloud, type ResolvedCloud } from './credentials.js';
import { OpenStackError, parseErrorBody } from './errors.js';
import { createDispatcher, sendRaw, type RawResponse } from './http.js';
import { parseTokenResponse, tokenRequestBody, tokensUrl, type TokenInfo } from './keystone.js';

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';

export interface SessionOptions {
  cloud: ResolvedCloud;
  /** Timeouts, retries, token margin, body cap (the `openstack` config section). */
  config: OpenStackConfig;
  log: Logger;
  /** Clock (ms); tests move it to expire tokens without waiting. */
  now?: () => number;
  random?: () => number;
  userAgent?: string;
}

export interface RequestOptions {
  method?: HttpMethod;
  /** Serialised as the JSON body. */
  json?: unknown;
  headers?: Record<string, string>;
  /** Sends `OpenStack-API-Version: <serviceType> <microversion>`. */
  microversion?: string;
  signal?: AbortSignal;
  /** Retry transient failures; default: idempotent methods only (never POST/PATCH). */
  retry?: boolean;
  /** Statuses returned instead of thrown (e.g. 404 when absence is an answer). */
  accept?: number[];
}

export interface JsonResponse<T = unknown> {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON, or null for an empty body. */
  body: T | null;
}

export interface RequestRecord {
  service: string;
  method: string;
  path: string;
  /** HTTP status, or the error kind when there was no answer. */
  outcome: string;
  durationMs: number;
}

/** Counters read by metrics (memory only) and by benchmarks. */
export interface SessionStats {
  tokenRequests: number;
  authFailures: number;
  /** 401s answered by a re-authentication. */
  reauthentications: number;
  requests: number;
  retries: number;
  /** Count by `service method outcome`, e.g. `placement GET 200`, `placement PUT 409`, `placement GET unreachable`. */
  byOutcome: Map<string, number>;
}

const IDEMPOTENT = new Set<HttpMethod>(['GET', 'HEAD', 'PUT', 'DELETE']);

export class OpenStackSession {
  readonly stats: SessionStats = { tokenRequests: 0, authFailures: 0, reauthentications: 0, requests: 0, retries: 0, byOutcome: new Map() };
  private readonly dispatcher: Dispatcher & { close(): Promise<void> };
  private readonly now: () => number;
  private readonly random: () => number;
  private tokenInfo: TokenInfo | null = null;
  private authInFlight: Promise<TokenInfo> | null = null;
  private readonly microversions = new Map<string, string>();
  private readonly listeners = new Set<(r: RequestRecord) => void>();

  constructor(private readonly options: SessionOptions) {
    this.dispatcher = createDispatcher({ cacert: options.cloud.cacert, verify: options.cloud.verify, timeoutMs: options.config.timeoutSeconds * 1000 });
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  get cloud(): ResolvedCloud {
    return this.options.cloud;
  }

  /** The cached token's facts (no secret), or null before the first authentication. */
  get tokenFacts(): { expiresAt: number; roles: string[]; projectId: string | null; userId: string | null } | null {
    const t = this.tokenInfo;
    return t ? { expiresAt: t.expiresAt, roles: t.roles, projectId: t.projectId, userId: t.userId } : null;
  }

  /** Observes every HTTP exchange (benchmarks count requests per cycle with it). */
  onRequest(listener: (r: RequestRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forgets the token, e.g. after a 401, so the next call authenticates again. */
  invalidateToken(): void {
    this.tokenInfo = null;
  }

  /** A valid token, authenticating when none is cached or it expires within the margin. */
  async token(signal?: AbortSignal): Promise<TokenInfo> {
    const margin = this.options.config.tokenRefreshMarginSeconds * 1000;
    const cached = this.tokenInfo;
    if (cached && cached.expiresAt - margin > this.now()) return cached;
    // Single flight: concurrent callers share one token request.
    this.authInFlight ??= this.authenticate(signal).finally(() => {
      this.authInFlight = null;
    });
    return this.authInFlight;
  }

  private async authenticate(signal?: AbortSignal): Promise<TokenInfo> {
    const cloud = this.options.cloud;
    const url = tokensUrl(cloud.authUrl);
    this.stats.tokenRequests += 1;
    let res: RawResponse;
    try {
      res = await this.exchange('identity', 'POST', url, { 'content-type': 'application/json' }, tokenRequestBody(cloud), signal, true);
    } catch (err) {
      if (err instanceof OpenStackError && err.kind !== 'aborted') this.stats.authFailures += 1;
      throw err;
    }
    if (res.status !== 201 && res.status !== 200) {
      this.stats.authFailures += 1;
      const parsed = parseErrorBody(res.text);
      const who = describeCloud(cloud);
      const kind = res.status === 401 || res.status === 403 || res.status === 404 ? 'auth' : 'status';
      throw new OpenStackError(
        { kind, service: 'identity', method: 'POST', path: new URL(url).pathname, status: res.status, ...parsed },
        `Keystone refused the credentials from ${cloud.source} (HTTP ${res.status}${parsed.detail ? `: ${parsed.detail}` : ''}; user ${JSON.stringify(who.user ?? who.applicationCredentialId ?? '?')})`,
      );
    }
    const info = parseTokenResponse(res.headers['x-subject-token'], res.text, this.now());
    this.tokenInfo = info;
    this.options.log.debug({ cloud: describeCloud(cloud), expiresAt: new Date(info.expiresAt).toISOString(), roles: info.roles }, 'authenticated to Keystone');
    return info;
  }

  /** The catalog URL for a service type on the configured interface and region. */
  async endpoint(serviceType: string, signal?: AbortSignal): Promise<string> {
    const info = await this.token(signal);
    return findEndpoint(info.catalog, serviceType, this.options.cloud.interface, this.options.cloud.region);
  }

  /**
   * Picks the highest microversion in [min, max] the service offers, from its version document
   * (the endpoint root). Cached per service; `forgetMicroversion` after a service upgrade.
   */
  async negotiateMicroversion(serviceType: string, range: { min: string; max: string }, signal?: AbortSignal): Promise<string> {
    const cached = this.microversions.get(serviceType);
    if (cached) return cached;
    const res = await this.request<unknown>(serviceType, '', { signal, accept: [300] });
    const offered = parseVersionDocument(res.body);
    const fail = (why: string) =>
      new OpenStackError({ kind: 'microversion', service: serviceType, detail: why }, `${serviceType}: ${why}; the agent needs ${range.min} to ${range.max}`);
    if (!offered) throw fail('the version document names no microversion range');
    if (compareMicroversions(offered.max, range.min) < 0) throw fail(`the server offers at most ${offered.max}`);
    if (compareMicroversions(offered.min, range.max) > 0) throw fail(`the server needs at least ${offered.min}`);
    const chosen = compareMicroversions(offered.max, range.max) < 0 ? offered.max : range.max;
    this.microversions.set(serviceType, chosen);
    return chosen;
  }

  forgetMicroversion(serviceType: string): void {
    this.microversions.delete(serviceType);
  }

  /**
   * One request to `path` under the service's endpoint, parsed as JSON. Non-success statuses
   * become OpenStackError (kind `status`, `forbidden` or `auth`) unless listed in `accept`.
   */
  async request<T = unknown>(serviceType: string, path: string, options: RequestOptions = {}): Promise<JsonResponse<T>> {
    const method = options.method ?? 'GET';
    const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
    if (options.microversion) headers['openstack-api-version'] = `${serviceType} ${options.microversion}`;
    const body = options.json === undefined ? undefined : JSON.stringify(options.json);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const retry = options.retry ?? IDEMPOTENT.has(method);
    let reauthed = false;
    for (;;) {
      const info = await this.token(options.signal);
      const base = findEndpoint(info.catalog, serviceType, this.options.cloud.interface, this.options.cloud.region);
      const url = `${base}${path}`;
      const res = await this.exchange(serviceType, method, url, { ...headers, 'x-auth-token': info.token }, body, options.signal, retry);
      if (res.status === 401 && !reauthed) {
        // The token was revoked or expired early: authenticate once more, then give up.
        reauthed = true;
        this.stats.reauthentications += 1;
        if (this.tokenInfo === info) this.invalidateToken();
        this.options.log.info({ service: serviceType }, 'token refused (401); re-authenticating once');
        continue;
      }
      const accepted = (res.status >= 200 && res.status < 300) || options.accept?.includes(res.status);
      if (!accepted) throw statusError(serviceType, method, url, res);
      return { status: res.status, headers: res.headers, body: parseJsonBody<T>(serviceType, method, url, res) };
    }
  }

  /**
   * One GET whose body is read up to `maxBytes`, zeroed as it arrives and dropped, never decoded
   * or quoted (a secret payload, where only the status matters). Same token, endpoint, CA bundle
   * and verify setting, retries and one re-authentication on 401 as `request`; every status is
   * returned, not thrown. A body over `maxBytes` is a `bad-response` error naming only its size.
   */
  async requestDiscardingBody(
    serviceType: string,
    path: string,
    options: { headers?: Record<string, string>; signal?: AbortSignal; maxBytes?: number } = {},
  ): Promise<{ status: number; headers: Record<string, string> }> {
    const limits = { maxBytes: options.maxBytes ?? this.options.config.maxResponseBytes, discardBody: true };
    let reauthed = false;
    for (;;) {
      const info = await this.token(options.signal);
      const base = findEndpoint(info.catalog, serviceType, this.options.cloud.interface, this.options.cloud.region);
      const res = await this.exchange(serviceType, 'GET', `${base}${path}`, { ...options.headers, 'x-auth-token': info.token }, undefined, options.signal, true, limits);
      if (res.status === 401 && !reauthed) {
        reauthed = true;
        this.stats.reauthentications += 1;
        if (this.tokenInfo === info) this.invalidateToken();
        continue;
      }
      return { status: res.status, headers: res.headers };
    }
  }

  /** Sends with retries for transient failures; a non-2xx answer is returned, not thrown. */
  private async exchange(
    service: string,
    method: string,
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
    retry: boolean,
    limits: { maxBytes?: number; discardBody?: boolean } = {},
  ): Promise<RawResponse> {
    const cfg = this.options.config;
    const maxAttempts = retry ? cfg.maxAttempts : 1;
    const policy = { baseMs: cfg.retryBaseDelaySeconds * 1000, maxMs: cfg.retryMaxDelaySeconds * 1000 };
    const path = new URL(url).pathname;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      let res: RawResponse | undefined;
      let error: OpenStackError | undefined;
      try {
        res = await sendRaw(this.dispatcher, {
          service,
          method,
          url,
          headers: { 'user-agent': this.options.userAgent ?? 'vtpm-agent', ...headers },
          body,
          timeoutMs: cfg.timeoutSeconds * 1000,
          maxBytes: limits.maxBytes ?? cfg.maxResponseBytes,
          signal,
          ...(limits.discardBody ? { discardBody: true } : {}),
        });
      } catch (err) {
        if (!(err instanceof OpenStackError)) throw err;
        error = err;
      }
      const outcome = res ? String(res.status) : error!.kind;
      this.record({ service, method, path, outcome, durationMs: performance.now() - started });
      const transient = res ? res.status >= 500 : error!.transient;
      if (!transient || attempt >= maxAttempts || signal?.aborted) {
        if (error) throw Object.assign(error, { details: { ...error.details, attempts: attempt } });
        return res!;
      }
      this.stats.retries += 1;
      const delay = backoffDelay(policy, attempt, this.random);
      this.options.log.debug({ service, method, path, outcome, attempt, delayMs: delay }, 'transient OpenStack failure; retrying');
      try {
        await sleep(delay, signal);
      } catch {
        throw new OpenStackError({ kind: 'aborted', service, method, path }, `${method} ${path} aborted`);
      }
    }
  }

  private record(r: RequestRecord): void {
    this.stats.requests += 1;
    const key = `${r.service} ${r.method} ${r.outcome}`;
    this.stats.byOutcome.set(key, (this.stats.byOutcome.get(key) ?? 0) + 1);
    for (const l of this.listeners) l(r);
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }
}

function statusError(service: string, method: string, url: string, res: RawResponse): OpenStackError {
  const parsed = parseErrorBody(res.text);
  const path = new URL(url).pathname;
  const kind = res.status === 401 ? 'auth' : res.status === 403 ? 'forbidden' : 'status';
  const what = res.status === 401 ? 'token refused again after re-authentication' : res.status === 403 ? 'forbidden by policy' : (parsed.title ?? 'error');
  return new OpenStackError(
    { kind, service, method, path, status: res.status, ...parsed },
    `${service}: ${method} ${path} → HTTP ${res.status} ${what}${parsed.detail ? `: ${parsed.detail}` : ''}`,
  );
}

function parseJsonBody<T>(service: string, method: string, url: string, res: RawResponse): T | null {
  if (res.text.trim() === '') return null;
  try {
    return JSON.parse(res.text) as T;
  } catch {
    const path = new URL(url).pathname;
    throw new OpenStackError(
      { kind: 'bad-response', service, method, path, status: res.status },
      `${service}: ${method} ${path} answered ${res.status} with a body that is not JSON (${JSON.stringify(res.text.slice(0, 80))})`,
    );
  }
}

/** Compares `1.10` and `1.9` numerically. */
export function compareMicroversions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am !== bm ? Math.sign(am - bm) : Math.sign(an - bn);
}

const MICROVERSION = /^\d+\.\d+$/;

/**
 * Reads `{"versions":[{min_version,max_version}]}` (Placement, Nova) or `{"version":{…}}`
 * (a versioned endpoint). Null when no range is named.
 */
export function parseVersionDocument(doc: unknown): { min: string; max: string } | null {
  if (typeof doc !== 'object' || doc === null) return null;
  const d = doc as Record<string, unknown>;
  const list: unknown[] = Array.isArray(d.versions)
    ? d.versions
    : Array.isArray((d.versions as { values?: unknown })?.values)
      ? ((d.versions as { values: unknown[] }).values)
      : d.version
        ? [d.version]
        : [];
  const entries = list.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);
  const current = entries.find((v) => v.status === 'CURRENT') ?? entries[0];
  if (!current) return null;
  const max = typeof current.max_version === 'string' ? current.max_version : typeof current.version === 'string' ? current.version : '';
  const min = typeof current.min_version === 'string' ? current.min_version : '';
  if (!MICROVERSION.test(max)) return null;
  return { min: MICROVERSION.test(min) ? min : '1.0', max };
}
