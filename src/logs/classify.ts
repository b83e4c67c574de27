import type { BarbicanReason } from '../barbican/reasons.js';

/**
 * Parsing and classifying one nova-compute log line (oslo.log text format). Pure functions: the
 * sources (file, journald, CRI) hand over decoded lines, this module says what they mean.
 *
 * oslo.log's default formats (oslo_log/_options.py):
 *   context:   `%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] %(instance)s%(message)s`
 *   exception: `%(asctime)s.%(msecs)03d %(process)d ERROR %(name)s %(instance)s` + one traceback line
 * so a traceback line carries the pid and the instance but no request id.
 */

export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL' | 'TRACE' | 'AUDIT';

export interface ParsedLine {
  /** Unix ms of the line's own timestamp, when it has one (log time, not read time). */
  ts: number | null;
  pid: number | null;
  level: LogLevel | null;
  logger: string | null;
  requestId: string | null;
  instanceUuid: string | null;
  /** The whole line: patterns are matched against all of it (the logger name matters too). */
  text: string;
  /** The message after oslo's prefix and its `[context]` / `[instance: …]` groups. */
  message: string;
}

export type LineMarker = 'restart-failed';

export interface Classification {
  /** A Barbican / castellan failure and its reason, or null when the line is not one. */
  reason: BarbicanReason | null;
  /** Nova's "could not restart this guest" lines, used to attribute a reason to a guest. */
  marker: LineMarker | null;
}

const HEAD = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d{1,9})?)(Z|[+-]\d\d:?\d\d)?\s+(\d+)\s+(TRACE|DEBUG|INFO|AUDIT|WARNING|WARN|ERROR|CRITICAL)\s+(\S+)\s/;
const REQUEST_ID = /\breq-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/;
const INSTANCE_TAG = /\[instance: ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\]/;
/** Messages that name the instance in the text rather than in the `[instance: …]` tag. */
const INSTANCE_IN_TEXT = /(?:secret for instance|instance_uuid[=:] ?'?) ?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/;

/**
 * Is the line about Barbican at all (domain.md §6: Barbican → barbicanclient → castellan → Nova)?
 * Only lines passing this gate get a reason; the reason rules below would match too much alone
 * ("timed out", "Unauthorized" come from many clients).
 */
const BARBICAN_GATE =
  /Key ?[Mm]anager ?[Ee]rror|castellan|[Bb]arbican|VTPMSecret|Key not found, uuid|TPM encryption secret|Error retrieving object|Error getting secret|Client error:|Auth error:|service catalog is empty/;

/** Ordered: the first rule that matches decides (a 404 body may also say "Forbidden" in a traceback chain, the specific first). */
const REASON_RULES: ReadonlyArray<readonly [BarbicanReason, RegExp]> = [
  ['not_found', /VTPMSecretNotFound|Key not found, uuid|TPM encryption secret for instance \S+ was not found|ManagedObjectNotFound|[Ss]ecret not found|Provided secret id is invalid|\b404 Client error/],
  ['forbidden', /VTPMSecretForbidden|Forbidden|\b403 Client error|not authorized to use key manager|attempt not allowed/],
  ['empty_catalog', /service catalog is empty|EmptyCatalog|EndpointNotFound|Could not find requested endpoint/],
  ['unauthenticated', /No valid authentication is available|\b401 Client error|Unauthorized|HTTPAuthError|Auth error:|requires authentication|MissingAuthPlugin|AuthorizationFailure|NoMatchingPlugin/],
  ['unavailable', /\b5\d\d Server error|HTTPServerError|Service Unavailable|Bad Gateway|Gateway Time-?out|ConnectFailure|ConnectTimeout|Unable to establish connection|Connection refused|timed out|RetriableConnectionFailure/],
];

/** Traceback frames (`  File "…/castellan/…", line 1, in get` and the code under it) name modules, not failures. */
const TRACEBACK_FRAME = /^(?: {2}File "| {4}\S)/;
/** Leading `[None req-… - - -]`, `[-]` and `[instance: …]` groups of oslo's format. */
const LEADING_GROUPS = /^(?:\[[^\]]*\] ?){0,2}/;

const RESTART_FAILED = /Failed to resume instance|Failed to start libvirt guest/;

/** Levels that can carry a failure: castellan logs with LOG.error, Nova with warning/error/exception. */
const FAILURE_LEVELS: ReadonlySet<LogLevel> = new Set(['WARNING', 'ERROR', 'CRITICAL']);

function toLevel(raw: string): LogLevel {
  return raw === 'WARN' ? 'WARNING' : (raw as LogLevel);
}

function parseTime(date: string, time: string, zone: string | undefined): number | null {
  // oslo's asctime has no zone: read it as local time, which is what the host wrote. Only
  // differences between lines are used (the incident window), so the zone rarely matters.
  const ms = Date.parse(`${date}T${time.slice(0, 12)}${zone ?? ''}`);
  return Number.isFinite(ms) ? ms : null;
}

export interface ParseHints {
  /** Read time or the source's own timestamp (journald, CRI), used when the text has none. */
  ts?: number | null;
  pid?: number | null;
  /** Level from the source (journald PRIORITY) when the text has none. */
  level?: LogLevel | null;
}

export function parseLine(text: string, hints: ParseHints = {}): ParsedLine {
  const head = HEAD.exec(text);
  const instance = INSTANCE_TAG.exec(text) ?? INSTANCE_IN_TEXT.exec(text);
  const request = REQUEST_ID.exec(text);
  let message = text;
  if (head) {
    message = text.slice(head[0].length);
    // The instance group directly follows the context group; strip both (only leading ones).
    message = message.replace(LEADING_GROUPS, '');
  }
  return {
    ts: (head ? parseTime(head[1]!, head[2]!, head[3]) : null) ?? hints.ts ?? null,
    pid: head ? Number(head[4]) : (hints.pid ?? null),
    level: head ? toLevel(head[5]!) : (hints.level ?? null),
    logger: head ? head[6]! : null,
    requestId: request ? request[1]! : null,
    instanceUuid: instance ? instance[1]! : null,
    text,
    message,
  };
}

export function classify(line: ParsedLine): Classification {
  // A known level that cannot carry a failure (the DEBUG dump of `[barbican]` options at start-up
  // mentions Barbican on every restart) is never counted. An unknown level is judged by text.
  if (line.level !== null && !FAILURE_LEVELS.has(line.level)) return { reason: null, marker: null };
  if (TRACEBACK_FRAME.test(line.message)) return { reason: null, marker: null };
  const marker: LineMarker | null = RESTART_FAILED.test(line.text) ? 'restart-failed' : null;
  if (!BARBICAN_GATE.test(line.text)) return { reason: null, marker };
  for (const [reason, pattern] of REASON_RULES) {
    if (pattern.test(line.text)) return { reason, marker };
  }
  return { reason: 'other', marker };
}

/**
 * Every pattern the classifier matches, as GNU grep extended regexes (`\\d` spelt `[0-9]`), for
 * the grep baseline in the bench: the gate and the restart marker run on every line, the reason
 * rules on the gate's hits.
 */
export const GREP_PATTERN_SOURCES: readonly string[] = [BARBICAN_GATE, RESTART_FAILED, ...REASON_RULES.map(([, p]) => p)].map((p) => p.source.replaceAll('\\d', '[0-9]'));
