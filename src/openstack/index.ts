/**
 * OpenStack client shared by the Placement reconciler and the Barbican preflight.
 *
 * Usage:
 * ```ts
 * import { openSession, isOpenStackError } from '../openstack/index.js';
 * const opened = openSession(config.openstack, { env: process.env, log });
 * if (opened.state === 'not-configured') return;          // no credentials anywhere: do nothing
 * if (opened.state === 'invalid') report(opened.error);    // typed AgentError naming the bad field
 * const session = opened.session;                           // one per consumer; reuse it
 * for (const w of session.cloud.warnings) log.warn(w);      // e.g. clouds.yaml readable by others
 * const mv = await session.negotiateMicroversion('key-manager', { min: '1.0', max: '1.1' }, signal);
 * const res = await session.request<MyBody>('key-manager', '/v1/secrets/ID', { microversion: mv, signal, accept: [404] });
 * // res.status, res.body (parsed JSON or null). Failures throw OpenStackError with
 * // kind: 'status' | 'forbidden' | 'auth' | 'timeout' | 'unreachable' | 'bad-response' | 'endpoint' | 'microversion' | 'aborted',
 * // plus status, errorCode (the service's JSON `code`), detail. Retries (5xx, connection errors,
 * // idempotent methods), one re-auth on 401 and token caching are done for you.
 * session.stats;            // tokenRequests, authFailures, requests, byOutcome … (for metrics, memory only)
 * await session.close();    // on stop
 * ```
 * Credentials: `openstack.cloud`/`OS_CLOUD` → clouds.yaml (openstacksdk search path, secure.yaml
 * merged); else `OS_*` variables when `OS_AUTH_URL` is set; `openstack.auth.*` overrides either.
 */
import type { Logger } from 'pino';
import { toAgentError, type AgentError } from '../errors.js';
import type { OpenStackConfig } from './config.js';
import { resolveCloud } from './credentials.js';
import { OpenStackSession } from './session.js';

export { openstackConfigSchema, type OpenStackConfig } from './config.js';
export { resolveCloud, describeCloud, permissionWarning, cloudsYamlSearchPath, type ResolvedCloud, type EndpointInterface } from './credentials.js';
export { OpenStackError, isOpenStackError, parseErrorBody, type OpenStackErrorKind } from './errors.js';
export {
  OpenStackSession,
  compareMicroversions,
  parseVersionDocument,
  type SessionOptions,
  type RequestOptions,
  type JsonResponse,
  type SessionStats,
  type RequestRecord,
} from './session.js';
export { backoffDelay, sleep, type BackoffPolicy } from './backoff.js';

export type OpenedSession =
  | { state: 'not-configured' }
  | { state: 'invalid'; error: AgentError }
  | { state: 'ready'; session: OpenStackSession };

/** Resolves credentials and builds a session; never throws (bad input is a typed `invalid`). */
export function openSession(config: OpenStackConfig, options: { env?: NodeJS.ProcessEnv; log: Logger; now?: () => number; userAgent?: string }): OpenedSession {
  try {
    const cloud = resolveCloud(config, options.env ?? process.env);
    if (!cloud) return { state: 'not-configured' };
    return {
      state: 'ready',
      session: new OpenStackSession({ cloud, config, log: options.log, ...(options.now ? { now: options.now } : {}), ...(options.userAgent ? { userAgent: options.userAgent } : {}) }),
    };
  } catch (err) {
    return { state: 'invalid', error: toAgentError(err, 'VTPM_ERR_OPENSTACK_CONFIG') };
  }
}
