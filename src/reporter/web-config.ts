/**
 * The exporter-toolkit web configuration file (`--web.config.file`, the format node_exporter
 * takes): TLS, client certificates, basic auth users, response headers, rate limit. Parsed once
 * into typed settings; every referenced file is read and the TLS material is loaded here, so a
 * bad file is a configuration error (exit 78) naming the field, never a failure at first request.
 */
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatIssues } from '../errors.js';

/** Go's crypto/tls version names → Node's. */
const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;

/**
 * Go's `tls.CipherSuites()` (the suites exporter-toolkit accepts) → OpenSSL names. The TLS 1.3
 * suites are accepted and, as in Go, do not constrain TLS 1.3 (not configurable there).
 */
const GO_CIPHERS: Record<string, string | null> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  // Go's legacy aliases of the two above.
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_AES_128_GCM_SHA256: null,
  TLS_AES_256_GCM_SHA384: null,
  TLS_CHACHA20_POLY1305_SHA256: null,
};

/** Go curve names → OpenSSL group names. */
const GO_CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

/** bcrypt in modular crypt form: $2a$, $2b$ or $2y$, two-digit cost, 53 characters of salt+hash. */
const BCRYPT = /^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$/;
/** A Go duration: `1s`, `500ms`, `1m30s`, `0`. */
const GO_DURATION = /^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$/;

const tlsSchema = z
  .strictObject({
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    client_ca: z.string().min(1).optional(),
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
    client_auth_type: z.enum(CLIENT_AUTH_TYPES, { error: `must be one of ${CLIENT_AUTH_TYPES.join(', ')}` }).default('NoClientCert'),
    client_ca_file: z.string().min(1).optional(),
    client_allowed_sans: z.array(z.string().min(1)).optional(),
    min_version: z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS], { error: 'must be one of TLS10, TLS11, TLS12, TLS13' }).default('TLS12'),
    max_version: z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS], { error: 'must be one of TLS10, TLS11, TLS12, TLS13' }).default('TLS13'),
    cipher_suites: z.array(z.string().refine((c) => c in GO_CIPHERS, { error: (i) => `unknown cipher suite ${JSON.stringify(i.input)} (Go crypto/tls names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)` })).optional(),
    prefer_server_cipher_suites: z.boolean().default(true),
    curve_preferences: z.array(z.string().refine((c) => c in GO_CURVES, { error: (i) => `unknown curve ${JSON.stringify(i.input)} (one of ${Object.keys(GO_CURVES).join(', ')})` })).optional(),
  })
  .superRefine((t, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (t.cert && t.cert_file) issue('cert', 'give cert or cert_file, not both');
    if (t.key && t.key_file) issue('key', 'give key or key_file, not both');
    if (t.client_ca && t.client_ca_file) issue('client_ca', 'give client_ca or client_ca_file, not both');
    const hasCert = Boolean(t.cert ?? t.cert_file);
    const hasKey = Boolean(t.key ?? t.key_file);
    if (hasCert && !hasKey) issue('key_file', 'missing key_file (a certificate needs its key)');
    if (hasKey && !hasCert) issue('cert_file', 'missing cert_file (a key needs its certificate)');
    if ((t.client_ca ?? t.client_ca_file) && t.client_auth_type === 'NoClientCert') {
      issue('client_auth_type', 'client CA configured without a client auth policy (set client_auth_type, e.g. RequireAndVerifyClientCert)');
    }
    if (t.client_allowed_sans?.length && t.client_auth_type !== 'RequireAnyClientCert' && t.client_auth_type !== 'RequireAndVerifyClientCert') {
      issue('client_allowed_sans', 'needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert');
    }
    const order = Object.keys(TLS_VERSIONS);
    if (order.indexOf(t.min_version) > order.indexOf(t.max_version)) issue('max_version', `max_version ${t.max_version} is below min_version ${t.min_version}`);
  });

const webConfigFileSchema = z.strictObject({
  tls_server_config: tlsSchema.optional(),
  http_server_config: z
    .strictObject({
      http2: z.boolean().default(true),
      headers: z
        .strictObject({
          'Content-Security-Policy': z.string().optional(),
          'X-Frame-Options': z.string().refine((v) => v === '' || /^(deny|sameorigin)$/i.test(v), 'accepted values are deny and sameorigin').optional(),
          'X-Content-Type-Options': z.string().refine((v) => v === '' || /^nosniff$/i.test(v), 'accepted value is nosniff').optional(),
          'X-XSS-Protection': z.string().optional(),
          'Strict-Transport-Security': z.string().optional(),
        })
        .optional(),
    })
    .optional(),
  basic_auth_users: z
    .record(z.string().min(1, 'user name must not be empty'), z.string().regex(BCRYPT, 'must be a bcrypt hash ($2y$10$…, e.g. from `htpasswd -nBC 10 "" | tr -d \':\\n\'`)'))
    .nullable()
    .optional(),
  rate_limit: z
    .strictObject({
      interval: z.string().regex(GO_DURATION, 'must be a duration such as 1s or 500ms'),
      burst: z.number().int().min(0),
    })
    .optional(),
});

type WebConfigFile = z.infer<typeof webConfigFileSchema>;

export interface TlsSettings {
  /** What `tls.createServer` / `server.setSecureContext` take. */
  context: SecureContextOptions;
  clientAuth: ClientAuthType;
  allowedSans: string[];
}

/** The web configuration in effect: parsed, with its TLS material loaded. */
export interface WebConfig {
  source: string;
  /** null: plain HTTP (no certificate configured, as in exporter-toolkit). */
  tls: TlsSettings | null;
  /** user → bcrypt hash; empty: no basic auth. */
  users: Map<string, string>;
  headers: Record<string, string>;
  /** Token bucket; null: no rate limit. */
  rateLimit: { intervalMs: number; burst: number } | null;
  /** Every file this configuration was read from (watched for changes). */
  files: string[];
}

export class WebConfigError extends ConfigError {}

function goDurationMs(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

/** Reads and validates the web configuration file; throws WebConfigError naming each bad field. */
export async function loadWebConfig(path: string): Promise<WebConfig> {
  const fail = (issues: string[]): never => {
    throw new WebConfigError(`invalid web configuration file ${path}`, issues);
  };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return fail([`${path}: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    return fail([`not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail(['(root): must be a mapping of keys to values']);
  const parsed = webConfigFileSchema.safeParse(raw);
  if (!parsed.success) return fail(formatIssues(parsed.error));
  const file = parsed.data;
  const files = [path];
  const issues: string[] = [];
  const readPem = async (field: string, filePath: string | undefined, inline: string | undefined): Promise<string | undefined> => {
    if (inline !== undefined) return inline;
    if (filePath === undefined) return undefined;
    files.push(filePath);
    try {
      return await readFile(filePath, 'utf8');
    } catch (err) {
      issues.push(`tls_server_config.${field}: cannot read ${filePath}: ${(err as Error).message}`);
      return undefined;
    }
  };
  let tls: TlsSettings | null = null;
  const t = file.tls_server_config;
  if (t && (t.cert ?? t.cert_file)) {
    const cert = await readPem('cert_file', t.cert_file, t.cert);
    const key = await readPem('key_file', t.key_file, t.key);
    const ca = await readPem('client_ca_file', t.client_ca_file, t.client_ca);
    const ciphers = t.cipher_suites?.map((c) => GO_CIPHERS[c]).filter((c): c is string => typeof c === 'string');
    const context: SecureContextOptions = {
      cert,
      key,
      ...(ca ? { ca } : {}),
      minVersion: TLS_VERSIONS[t.min_version],
      maxVersion: TLS_VERSIONS[t.max_version],
      honorCipherOrder: t.prefer_server_cipher_suites,
      ...(ciphers?.length ? { ciphers: ciphers.join(':') } : {}),
      ...(t.curve_preferences?.length ? { ecdhCurve: t.curve_preferences.map((c) => GO_CURVES[c]).join(':') } : {}),
    };
    if (issues.length === 0) {
      // Load it now: a key that does not match its certificate, or PEM that is not PEM, is a
      // configuration error at start (or a rejected reload), not a handshake failure later.
      try {
        createSecureContext(context);
      } catch (err) {
        issues.push(`tls_server_config: cert_file/key_file${ca ? '/client_ca_file' : ''} cannot be used: ${(err as Error).message}`);
      }
    }
    tls = { context, clientAuth: t.client_auth_type, allowedSans: t.client_allowed_sans ?? [] };
  }
  if (issues.length) fail(issues);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(file.http_server_config?.headers ?? {})) if (value) headers[name] = value;
  return {
    source: path,
    tls,
    users: new Map(Object.entries(file.basic_auth_users ?? {})),
    headers,
    rateLimit: file.rate_limit && goDurationMs(file.rate_limit.interval) > 0 ? { intervalMs: goDurationMs(file.rate_limit.interval), burst: file.rate_limit.burst } : null,
    files,
  };
}
