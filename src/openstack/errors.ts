import { AgentError, type ErrorCode } from '../errors.js';

/** What went wrong with a request, so callers can branch without parsing messages. */
export type OpenStackErrorKind =
  /** The server answered with a non-success status (see `status`, `errorCode`). */
  | 'status'
  /** No answer within the timeout. */
  | 'timeout'
  /** Connection refused/reset, DNS, TLS: the server could not be reached. */
  | 'unreachable'
  /** The answer was not the JSON we need, or larger than allowed. */
  | 'bad-response'
  /** The caller's signal was aborted (agent stopping). */
  | 'aborted'
  /** Keystone refused the credentials, or a token was refused twice. */
  | 'auth'
  /** The service's policy refused the request (403). */
  | 'forbidden'
  /** No endpoint for the service type / interface / region in the catalog. */
  | 'endpoint'
  /** The server offers no microversion in the range we can speak. */
  | 'microversion';

export interface OpenStackErrorInfo {
  kind: OpenStackErrorKind;
  /** Service type the request was for (`identity` for Keystone). */
  service: string;
  method?: string;
  /** URL path only: query strings may carry names, never secrets, but keep logs short. */
  path?: string;
  status?: number;
  /** The service's own error code from the JSON body, e.g. `placement.concurrent_update`. */
  errorCode?: string;
  title?: string;
  detail?: string;
  requestId?: string;
  attempts?: number;
}

const CODES: Record<OpenStackErrorKind, ErrorCode> = {
  status: 'VTPM_ERR_HTTP',
  timeout: 'VTPM_ERR_HTTP_TIMEOUT',
  unreachable: 'VTPM_ERR_HTTP_UNREACHABLE',
  'bad-response': 'VTPM_ERR_HTTP_BAD_RESPONSE',
  aborted: 'VTPM_ERR_HTTP',
  auth: 'VTPM_ERR_AUTH',
  forbidden: 'VTPM_ERR_FORBIDDEN',
  endpoint: 'VTPM_ERR_OPENSTACK_ENDPOINT',
  microversion: 'VTPM_ERR_OPENSTACK_MICROVERSION',
};

/** Every failure of the OpenStack client: an AgentError with typed fields. */
export class OpenStackError extends AgentError {
  readonly kind: OpenStackErrorKind;
  readonly service: string;
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  readonly detail: string | undefined;

  constructor(info: OpenStackErrorInfo, message: string, cause?: unknown) {
    const details: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(info)) if (v !== undefined) details[k] = v;
    super(CODES[info.kind], message, { cause, details });
    this.name = 'OpenStackError';
    this.kind = info.kind;
    this.service = info.service;
    this.status = info.status;
    this.errorCode = info.errorCode;
    this.detail = info.detail;
  }

  /** Worth retrying on an idempotent request: the server may answer next time. */
  get transient(): boolean {
    return this.kind === 'unreachable' || this.kind === 'timeout' || (this.kind === 'status' && (this.status ?? 0) >= 500);
  }
}

export function isOpenStackError(err: unknown, kind?: OpenStackErrorKind): err is OpenStackError {
  return err instanceof OpenStackError && (kind === undefined || err.kind === kind);
}

export interface ParsedErrorBody {
  errorCode?: string;
  title?: string;
  detail?: string;
  requestId?: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/**
 * Reads the error shapes OpenStack services use: Placement `{"errors":[{code,title,detail,request_id}]}`,
 * Keystone `{"error":{code,title,message}}`, Barbican `{"code","title","description"}`, and
 * keystonemiddleware's `{"message","code","title"}`. Anything else gives an empty result.
 */
export function parseErrorBody(text: string): ParsedErrorBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof body !== 'object' || body === null) return {};
  const b = body as Record<string, unknown>;
  const first = Array.isArray(b.errors) ? (b.errors[0] as Record<string, unknown> | undefined) : undefined;
  const nested = typeof b.error === 'object' && b.error !== null ? (b.error as Record<string, unknown>) : undefined;
  const src = first ?? nested ?? b;
  const detail = str(src.detail) ?? str(src.message) ?? str(src.description);
  return {
    errorCode: str(src.code),
    title: str(src.title),
    // Placement's detail carries blank lines and trailing spaces; one line reads better in status.
    detail: detail?.replace(/\s+/g, ' ').trim(),
    requestId: str(src.request_id),
  };
}
