import { AgentError } from '../errors.js';

/** Parsers for the raw inputs of the node identity; each returns a typed value or throws VTPM_ERR_PARSE. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Nova's `compute_id` file: one UUID, optionally followed by a newline. */
export function parseComputeId(text: string, file: string): string {
  const value = text.trim();
  if (!UUID.test(value)) {
    throw new AgentError('VTPM_ERR_PARSE', `${file} does not hold a UUID (found ${JSON.stringify(value.slice(0, 60))})`, { details: { file } });
  }
  return value.toLowerCase();
}

/** RFC 1123 host name (with dots): what `hostname --fqdn` and `virsh hostname` print on one line. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export function parseHostname(output: string, what: string): string {
  const value = output.trim();
  if (!HOSTNAME.test(value)) {
    throw new AgentError('VTPM_ERR_PARSE', `${what} printed no host name (output ${JSON.stringify(value.slice(0, 80))})`, { details: { what } });
  }
  return value.replace(/\.$/, '');
}

