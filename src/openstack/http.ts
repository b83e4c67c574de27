/**
 * The one place the agent speaks HTTP to OpenStack: undici with a per-session dispatcher (CA
 * bundle, verify), one deadline per request covering connect, headers and body, and a body size
 * cap. Returns raw text; callers parse JSON at the edge.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Agent, Dispatcher } from 'undici';
import { AgentError } from '../errors.js';
import { OpenStackError } from './errors.js';

// undici is loaded on first use: a host without OpenStack credentials never speaks HTTP to it,
// and the module graph is ~10 MiB of the agent's resident memory.
let undiciModule: typeof import('undici') | undefined;
const undici = (): typeof import('undici') => (undiciModule ??= createRequire(import.meta.url)('undici') as typeof import('undici'));

export interface TransportOptions {
  cacert: string | null;
  verify: boolean;
  timeoutMs: number;
}

export function createDispatcher(options: TransportOptions): Agent {
  let ca: string | undefined;
  if (options.cacert) {
    try {
      ca = readFileSync(options.cacert, 'utf8');
    } catch (err) {
      throw new AgentError('VTPM_ERR_OPENSTACK_CONFIG', `cannot read CA bundle ${options.cacert}: ${(err as Error).message}`, {
        details: { cacert: options.cacert },
      });
    }
  }
  return new (undici().Agent)({
    connect: { timeout: options.timeoutMs, rejectUnauthorized: options.verify, ...(ca ? { ca } : {}) },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 4_000,
  });
}

export interface RawRequest {
  service: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
  /** Zero each body chunk as it arrives and keep none of it (`text` is ''): secret payloads. */
  discardBody?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errorCodeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function flattenHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export async function sendRaw(dispatcher: Dispatcher, req: RawRequest): Promise<RawResponse> {
  const path = new URL(req.url).pathname;
  const info = { service: req.service, method: req.method, path };
  const deadline = AbortSignal.timeout(req.timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, deadline]) : deadline;
  const failure = (err: unknown): OpenStackError => {
    if (req.signal?.aborted) return new OpenStackError({ ...info, kind: 'aborted' }, `${req.method} ${path} aborted`, err);
    const code = errorCodeOf(err);
    if (deadline.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new OpenStackError({ ...info, kind: 'timeout' }, `${req.service}: ${req.method} ${path} got no answer within ${req.timeoutMs} ms`, err);
    }
    const reason = code && UNREACHABLE.has(code) ? code : ((err as Error)?.message ?? String(err));
    return new OpenStackError({ ...info, kind: 'unreachable' }, `${req.service}: cannot reach ${new URL(req.url).host} (${reason})`, err);
  };
  let res: Dispatcher.ResponseData;
  try {
    res = await undici().request(req.url, {
      dispatcher,
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers,
      body: req.body,
      signal,
    });
  } catch (err) {
    throw failure(err);
  }
  const headers = flattenHeaders(res.headers);
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > req.maxBytes) {
    res.body.destroy();
    throw new OpenStackError(
      { ...info, kind: 'bad-response', status: res.statusCode },
      `${req.service}: ${req.method} ${path} answered ${declared} bytes, more than the ${req.maxBytes} allowed`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (req.discardBody) (chunk as Buffer).fill(0);
      if (size > req.maxBytes) {
        res.body.destroy();
        throw new OpenStackError(
          { ...info, kind: 'bad-response', status: res.statusCode },
          `${req.service}: ${req.method} ${path} answered more than the ${req.maxBytes} bytes allowed`,
        );
      }
      if (!req.discardBody) chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof OpenStackError) throw err;
    throw failure(err);
  }
  return { status: res.statusCode, headers, text: Buffer.concat(chunks).toString('utf8') };
}
