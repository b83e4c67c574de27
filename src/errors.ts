import type { z } from 'zod';

/**
 * One catalogue of coded errors (after fastify's): every failure the agent reports carries a
 * stable code that operators can grep for and alerts can match, plus a human message.
 */
export const errorCatalogue = {
  VTPM_ERR_CONFIG_INVALID: 'configuration is invalid',
  VTPM_ERR_EXEC_NOT_FOUND: 'command not found',
  VTPM_ERR_EXEC_TIMEOUT: 'command timed out',
  VTPM_ERR_EXEC_FAILED: 'command failed',
  VTPM_ERR_EXEC_ABORTED: 'command aborted',
  VTPM_ERR_PARSE: 'output could not be parsed',
  VTPM_ERR_OUTPUT_TOO_LARGE: 'command output exceeded its cap (the command was killed)',
  VTPM_ERR_PROBE_TIMEOUT: 'probe timed out',
  VTPM_ERR_PROBE_FAILED: 'probe failed',
  VTPM_ERR_LIBVIRT_UNAVAILABLE: 'libvirt is not reachable',
  VTPM_ERR_TPM_PROTOCOL: 'TPM protocol error',
  VTPM_ERR_TPM_RESPONSE: 'TPM returned an error code',
  VTPM_ERR_SWTPM_START: 'swtpm could not be started',
  VTPM_ERR_HTTP: 'HTTP request failed',
  VTPM_ERR_AUTH: 'authentication failed',
  VTPM_ERR_HTTP_TIMEOUT: 'HTTP request timed out',
  VTPM_ERR_HTTP_UNREACHABLE: 'HTTP server unreachable',
  VTPM_ERR_HTTP_BAD_RESPONSE: 'HTTP response malformed or too large',
  VTPM_ERR_FORBIDDEN: 'permission denied by the service policy',
  VTPM_ERR_OPENSTACK_CONFIG: 'OpenStack credentials are incomplete or invalid',
  VTPM_ERR_OPENSTACK_ENDPOINT: 'service endpoint not found in the catalog',
  VTPM_ERR_OPENSTACK_MICROVERSION: 'no common API microversion',
  VTPM_ERR_PLACEMENT_PROVIDER_NOT_FOUND: 'resource provider not found',
  VTPM_ERR_PLACEMENT_CONFLICT: 'resource provider kept changing concurrently',
  VTPM_ERR_STATE_CORRUPT: 'persisted state is corrupt',
  VTPM_ERR_GUEST_DOMAIN_UNREADABLE: 'a libvirt domain could not be read (vanished or unreadable)',
  VTPM_ERR_LOG_READ: 'nova-compute log cannot be read',
  VTPM_ERR_STATE_WRITE: 'persisted state cannot be written',
  VTPM_ERR_STATE_UNREADABLE: 'persisted state cannot be read or set aside',
  VTPM_ERR_BARBICAN_PREFLIGHT: 'Barbican secret preflight failed',
  VTPM_ERR_PROMETHEUS_QUERY: 'Prometheus query failed',
} as const;

export type ErrorCode = keyof typeof errorCatalogue;

export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? errorCatalogue[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.details = options?.details ?? {};
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Normalises anything thrown into a coded error, so probe failures are always reportable data. */
export function toAgentError(err: unknown, fallback: ErrorCode = 'VTPM_ERR_PROBE_FAILED'): AgentError {
  if (err instanceof AgentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError(fallback, message, { cause: err });
}

/** A configuration that cannot be used (exit 78): one line per problem, each naming its key. */
export class ConfigError extends AgentError {
  readonly issues: string[];
  constructor(message: string, issues: string[]) {
    super('VTPM_ERR_CONFIG_INVALID', `${message}:\n${issues.map((i) => `  - ${i}`).join('\n')}`, { details: { issues } });
    this.issues = issues;
  }
}

/** One line per zod issue, `path: message` (unknown keys listed by name). */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(root)';
    if (issue.code === 'unrecognized_keys') return `${where}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${where}: ${issue.message}`;
  });
}
