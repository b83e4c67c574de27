import { isOpenStackError, type OpenStackSession } from '../openstack/index.js';
import type { BarbicanReason } from './reasons.js';

/** What one check of one secret found. */
export type PreflightResult = 'ok' | 'forbidden' | 'not_found' | 'unauthenticated' | 'unavailable';
export const preflightResults: readonly PreflightResult[] = ['ok', 'forbidden', 'not_found', 'unauthenticated', 'unavailable'];

export interface SecretCheck {
  result: PreflightResult;
  /** The failure reason in the shared vocabulary (null when ok). */
  reason: BarbicanReason | null;
  /** Human detail: status, the service's message. Never a token or payload. */
  detail: string;
  /** Whether the payload was fetched (and discarded) as part of this check. */
  payloadChecked: boolean;
}

const SERVICE = 'key-manager';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks one secret as the configured identity: `GET /v1/secrets/{uuid}` (metadata, policy
 * secret:get). With `payload`, also `GET …/payload` (secret:decrypt): the body is read into a
 * buffer that is zeroed and dropped right away; only its status is kept.
 */
export async function checkSecret(session: OpenStackSession, secretUuid: string, options: { payload: boolean; signal?: AbortSignal; timeoutMs: number }): Promise<SecretCheck> {
  if (!UUID.test(secretUuid)) {
    return { result: 'not_found', reason: 'not_found', detail: `not a secret UUID: ${JSON.stringify(secretUuid.slice(0, 64))}`, payloadChecked: false };
  }
  try {
    const res = await session.request<{ status?: unknown }>(SERVICE, `/v1/secrets/${secretUuid}`, { signal: options.signal, accept: [403, 404] });
    if (res.status === 403) return failed('forbidden', 'forbidden', 'GET secret metadata: HTTP 403 (policy secret:get refuses this identity)');
    if (res.status === 404) return failed('not_found', 'not_found', 'GET secret metadata: HTTP 404 (no such secret)');
    if (!options.payload) return { result: 'ok', reason: null, detail: 'metadata readable', payloadChecked: false };
    return await checkPayload(session, secretUuid, options);
  } catch (err) {
    return fromError(err);
  }
}

function failed(result: PreflightResult, reason: BarbicanReason, detail: string): SecretCheck {
  return { result, reason, detail, payloadChecked: false };
}

function fromError(err: unknown): SecretCheck {
  if (isOpenStackError(err)) {
    switch (err.kind) {
      case 'auth':
        return failed('unauthenticated', 'unauthenticated', err.message);
      case 'forbidden':
        return failed('forbidden', 'forbidden', err.message);
      case 'endpoint':
        return failed('unavailable', 'empty_catalog', err.message);
      case 'aborted':
        throw err;
      default:
        return failed('unavailable', 'unavailable', err.message);
    }
  }
  return failed('unavailable', 'other', err instanceof Error ? err.message : String(err));
}

/** A vTPM secret is a short passphrase; anything far larger is not what Nova stored. */
const PAYLOAD_MAX_BYTES = 64 * 1024;

/**
 * The payload goes through the session (its CA bundle and verify setting, retries, re-auth) but
 * not its JSON handling, which quotes the start of an unparsable body in its error message: here
 * the body is read up to a cap, zeroed chunk by chunk and dropped; only the status is kept.
 */
async function checkPayload(session: OpenStackSession, secretUuid: string, options: { signal?: AbortSignal; timeoutMs: number }): Promise<SecretCheck> {
  void options.timeoutMs; // the session's deadline (openstack.timeoutSeconds) covers connect, headers and body
  const { status } = await session.requestDiscardingBody(SERVICE, `/v1/secrets/${secretUuid}/payload`, {
    headers: { accept: 'application/octet-stream' },
    maxBytes: PAYLOAD_MAX_BYTES,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (status >= 200 && status < 300) return { result: 'ok', reason: null, detail: 'metadata and payload readable', payloadChecked: true };
  if (status === 403) return { result: 'forbidden', reason: 'forbidden', detail: 'GET secret payload: HTTP 403 (policy secret:decrypt refuses this identity)', payloadChecked: true };
  if (status === 404) return { result: 'not_found', reason: 'not_found', detail: 'GET secret payload: HTTP 404', payloadChecked: true };
  if (status === 401) return { result: 'unauthenticated', reason: 'unauthenticated', detail: 'GET secret payload: HTTP 401', payloadChecked: true };
  return { result: 'unavailable', reason: status >= 500 ? 'unavailable' : 'other', detail: `GET secret payload: HTTP ${status}`, payloadChecked: true };
}
